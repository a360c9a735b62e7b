"""Process plumbing shared by the benchmarks: free loopback ports, temp dirs,
child processes in their own process groups, RSS readings, and cleanup that
runs on normal exit, on errors, on Ctrl-C and on SIGTERM."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Coroutine, Sequence
from pathlib import Path
from types import FrameType
from typing import IO, Any, Self, TypeVar

LOOPBACK = "127.0.0.1"
T = TypeVar("T")

# Every process group and temp dir a benchmark creates is registered here so an
# interpreter exit (including one caused by an uncaught exception) reaps them.
_live_groups: dict[int, subprocess.Popen[bytes]] = {}
_temp_dirs: list[Path] = []


def make_temp_dir(prefix: str) -> Path:
    """A fresh temp dir removed by `cleanup_all` (or at interpreter exit)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    _temp_dirs.append(path)
    return path


def remove_temp_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(ValueError):
        _temp_dirs.remove(path)


def spawn(argv: Sequence[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start `argv` as the leader of a new session (so of a new process group),
    stdout and stderr appended to `log_path`."""
    log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - the child owns the fd
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    finally:
        log.close()
    _live_groups[proc.pid] = proc
    return proc


def kill_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    """Send `sig` to the whole process group of `proc` (its pgid is its pid)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def reap(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> int | None:
    """Wait for `proc` to exit; SIGKILL its group if it will not. Returns its exit code."""
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc, signal.SIGKILL)
        code = proc.wait(timeout=10.0)
    # Children of the group may outlive the leader: make sure none are left.
    kill_group(proc, signal.SIGKILL)
    _live_groups.pop(proc.pid, None)
    return code


def stop(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM the group, give it `grace` seconds, then SIGKILL and reap."""
    if proc.poll() is None:
        kill_group(proc, signal.SIGTERM)
    reap(proc, timeout=grace)


def write_bytes(pid: int) -> int | None:
    """Bytes ``pid`` caused to be written to storage (/proc/PID/io: whole pages dirtied), None if gone."""
    try:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def rss_bytes(pid: int) -> int | None:
    """VmRSS of `pid` from /proc/PID/status, in bytes; None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            value, unit = line.split()[1:3]
            assert unit == "kB", unit
            return int(value) * 1024
    return None


def _stat_cpu_seconds(stat_path: str, *, system_only: bool = False) -> float | None:
    """utime + stime (or stime alone) from a /proc .../stat file, in seconds; None if it is gone."""
    try:
        stat = Path(stat_path).read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces: count fields after its closing paren.
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = int(fields[12]) if system_only else int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, *, system_only: bool = False) -> float | None:
    """User + system (or only system) CPU seconds used so far by `pid` (all its threads, ended ones
    included)."""
    return _stat_cpu_seconds(f"/proc/{pid}/stat", system_only=system_only)


def context_switches(pid: int) -> int | None:
    """Voluntary + involuntary context switches of all threads of `pid` so far (thread wake-ups)."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tids:
        try:
            text = Path(f"/proc/{pid}/task/{tid}/status").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if "ctxt_switches:" in line:
                total += int(line.split()[1])
    return total


def main_thread_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of the main thread of `pid` only (an asyncio server's event loop)."""
    return _stat_cpu_seconds(f"/proc/{pid}/task/{pid}/stat")


def log_tail(path: Path, max_lines: int = 3, max_bytes: int = 4000) -> str:
    """The last lines of a member's log, for an error message (a traceback's
    last line names the exception)."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - max_bytes))
            data = f.read()
    except OSError:
        return ""
    lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    return " | ".join(lines[-max_lines:])


def preserve_logs(paths: Sequence[Path], label: str) -> Path:
    """Copy logs out of a temp dir that is about to be removed; the copy stays."""
    keep = Path(tempfile.mkdtemp(prefix=f"bench-logs-{label}-"))
    for path in paths:
        if path.exists():
            shutil.copy2(path, keep / path.name)
    return keep


def cleanup_all() -> None:
    """Kill every registered process group and remove every registered temp dir."""
    for proc in list(_live_groups.values()):
        kill_group(proc, signal.SIGKILL)
    deadline = time.monotonic() + 10.0
    for proc in list(_live_groups.values()):
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        _live_groups.pop(proc.pid, None)
    for path in list(_temp_dirs):
        remove_temp_dir(path)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Turn SIGTERM into an exception so `finally` blocks and context managers run.
    raise KeyboardInterrupt(f"signal {signum}")


def cancel_on_sigterm() -> None:
    """Call from the main coroutine: SIGTERM then cancels it (as Ctrl-C does
    under asyncio.run), so its `finally` blocks run. asyncio.run then raises
    CancelledError; the caller should turn that into KeyboardInterrupt."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is not None:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)


def install_cleanup() -> None:
    """Arrange for `cleanup_all` to run however the benchmark process ends
    (short of SIGKILL). Ctrl-C already raises KeyboardInterrupt."""
    atexit.register(cleanup_all)
    install_sigterm()


def run_benchmark(main: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    """``run_main``, then print the figures as the one JSON line that ends every benchmark's output."""
    figures = run_main(main)
    print(json.dumps(figures, sort_keys=False), flush=True)
    return figures


def install_sigterm() -> None:
    """SIGTERM raises KeyboardInterrupt outside an event loop (asyncio resets
    the handler when a loop that had `cancel_on_sigterm` closes)."""
    signal.signal(signal.SIGTERM, _on_sigterm)


def run_main(main: Coroutine[Any, Any, T]) -> T:
    """Run a benchmark's main coroutine with cleanup on every exit path: its process groups and temp
    dirs go however it ends, and SIGTERM ends it like Ctrl-C (KeyboardInterrupt)."""
    install_cleanup()
    try:
        return asyncio.run(main)
    except asyncio.CancelledError:
        raise KeyboardInterrupt("SIGTERM") from None
    finally:
        install_sigterm()
        cleanup_all()


class ProcessGroup:
    """Stop, kill and respawn for a cluster of member processes living under one temp dir.

    Subclasses list their members (objects with ``proc`` and ``log_path``) in ``members_of_group()``
    and start one with ``_spawn(index)``.
    """

    base_dir: Path
    member_word = "member"
    error: type[Exception] = RuntimeError

    def members_of_group(self) -> Sequence[Any]:
        raise NotImplementedError

    def _spawn(self, index: int) -> None:
        raise NotImplementedError

    def stop(self, keep_logs: bool = False) -> Path | None:
        """Stop every member and remove the temp dir; with `keep_logs`, the
        members' logs are copied out first and the copy's path returned."""
        kept = None
        for m in self.members_of_group():
            if m.proc is not None:
                stop(m.proc)
                m.proc = None
        if keep_logs:
            kept = preserve_logs([m.log_path for m in self.members_of_group()], self.base_dir.name)
        remove_temp_dir(self.base_dir)
        return kept

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop()

    def kill(self, node: int) -> None:
        proc = self.members_of_group()[node].proc
        if proc is None:
            raise self.error(f"{self.member_word} {node} is not running")
        kill_group(proc)

    def respawn(self, node: int) -> None:
        """Reap a killed member and start it again with the same flags and data dir."""
        m = self.members_of_group()[node]
        if m.proc is not None:
            reap(m.proc)
        self._spawn(node)
