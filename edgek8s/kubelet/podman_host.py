"""Podman's settings for one agent, and the ``podman system service`` it talks to.

The agent owns its Podman configuration: ``containers.conf`` and ``storage.conf`` are written under
``<data dir>/podman`` and every Podman process the agent starts (the service, and the CLI for cleanup)
gets them through ``CONTAINERS_CONF`` / ``CONTAINERS_STORAGE_CONF``. Image and container storage live in
the data dir; Podman's run state (``runroot``, ``tmp_dir``) lives on tmpfs under ``run_dir`` so a reboot
is detected as upstream expects. Network definitions (one bridge with this node's pod CIDR and a bridge
name derived from the data dir) are private too, so two agents on one machine never share IP allocation.

Host detection (``resolve``): cgroup v2 when ``/sys/fs/cgroup/cgroup.controllers`` exists; systemd when
``/run/systemd/system`` exists. runc on cgroup v1/hybrid (crun refuses them), crun where it exists on v2.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

from edgek8s.config import ConfigError, PodmanConfig

logger = logging.getLogger(__name__)

SOCKET_NAME = "podman.sock"


@dataclass(frozen=True, slots=True)
class PodmanHost:
    """Resolved paths and settings of one agent's Podman."""

    config: PodmanConfig
    conf_dir: Path
    run_dir: Path
    oci_runtime: str
    cgroup_manager: str
    cgroup_version: int
    systemd: bool

    @property
    def containers_conf(self) -> Path:
        return self.conf_dir / "containers.conf"

    @property
    def storage_conf(self) -> Path:
        return self.conf_dir / "storage.conf"

    @property
    def events_log(self) -> Path:
        return self.run_dir / "events.log"

    @property
    def socket(self) -> Path:
        return self.config.socket or self.run_dir / SOCKET_NAME

    @property
    def bridge(self) -> str:
        """A Linux interface name (at most 15 bytes) unique to this data dir."""
        return "ek8s" + hashlib.sha256(str(self.conf_dir).encode()).hexdigest()[:8]

    def env(self) -> dict[str, str]:
        return {**os.environ, "CONTAINERS_CONF": str(self.containers_conf),
                "CONTAINERS_STORAGE_CONF": str(self.storage_conf)}


def _cgroup_version() -> int:
    return 2 if Path("/sys/fs/cgroup/cgroup.controllers").exists() else 1


def resolve(config: PodmanConfig, data_dir: Path) -> PodmanHost:
    """Fill in every ``auto`` setting from this host."""
    if shutil.which(config.binary) is None:
        raise ConfigError(
            f"{config.binary} not found: workers run pods through Podman; install it with "
            "`apt-get install podman runc catatonit` (or run scripts/install.sh as root)"
        )
    version = _cgroup_version()
    systemd = Path("/run/systemd/system").is_dir()
    runtime = config.oci_runtime
    if runtime == "auto":
        runtime = "crun" if version == 2 and shutil.which("crun") else "runc"
    if shutil.which(runtime) is None:
        raise ConfigError(f"OCI runtime {runtime} not found: `apt-get install {runtime}`")
    manager = config.cgroup_manager
    if manager == "auto":
        manager = "systemd" if systemd else "cgroupfs"
    conf_dir = (data_dir / "podman").absolute()
    digest = hashlib.sha256(str(conf_dir).encode()).hexdigest()[:12]
    run_dir = config.run_dir or Path("/run/edgek8s") / digest
    return PodmanHost(config=config, conf_dir=conf_dir, run_dir=run_dir, oci_runtime=runtime,
                      cgroup_manager=manager, cgroup_version=version, systemd=systemd)


def _toml_list(values: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


def write_config(host: PodmanHost) -> None:
    """Write containers.conf and storage.conf (0600 dir) if their content changed."""
    host.conf_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    host.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    containers = "\n".join([
        "# written by edgek8s agent; edit the agent's flags instead",
        "[containers]",
        f"default_ulimits = {_toml_list(host.config.ulimits)}",
        'log_driver = "k8s-file"',
        # A chatty container must not fill a Pi's SD card (upstream's kubelet rotates at 10 MiB too).
        "log_size_max = 10485760",
        "[engine]",
        f'runtime = "{host.oci_runtime}"',
        f'cgroup_manager = "{host.cgroup_manager}"',
        # Podman's event log, on tmpfs (never the SD card), bounded: the agent tails it to see a container
        # die the moment it does, so the full relist can be rare (each one makes Podman write its state DB).
        'events_logger = "file"',
        f'events_logfile_path = "{host.events_log}"',
        'events_logfile_max_size = "1m"',
        f'tmp_dir = "{host.run_dir / "libpod"}"',
        "[network]",
        f'network_config_dir = "{host.conf_dir / "networks"}"',
        # Podman synthesises its default network (bridge podman0, 10.88.0.0/16) without creating it:
        # never use it, so two agents on one machine never share a bridge; pods join config.network.
        f'default_network = "{host.config.network}-unused"',
        "",
    ])
    storage = "\n".join([
        "[storage]",
        f'driver = "{host.config.storage_driver}"',
        f'graphroot = "{host.conf_dir / "storage"}"',
        f'runroot = "{host.run_dir / "storage"}"',
        "",
    ])
    for path, text in ((host.containers_conf, containers), (host.storage_conf, storage)):
        if not path.exists() or path.read_text() != text:
            path.write_text(text)


class PodmanService:
    """Starts ``podman system service`` on the agent's socket unless one already answers there.

    The service is started in its own session so an agent crash does not take it down; containers
    run under their own conmon processes and survive either way.
    """

    def __init__(self, host: PodmanHost) -> None:
        self.host = host
        self._process: asyncio.subprocess.Process | None = None

    async def _answers(self) -> bool:
        if not self.host.socket.exists():
            return False
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(self.host.socket)), 2.0)
        except (OSError, TimeoutError):
            return False
        try:
            writer.write(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
            await writer.drain()
            head = await asyncio.wait_for(reader.read(64), 5.0)
        except (OSError, TimeoutError):
            return False
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        return b" 200 " in head

    async def start(self, *, timeout: float = 30.0) -> None:
        if self.host.config.socket is None:
            write_config(self.host)
        if await self._answers():
            logger.info("using the running Podman service on %s", self.host.socket)
            return
        if self.host.config.socket is not None:
            raise ConfigError(f"no Podman service answers on {self.host.socket}")
        with contextlib.suppress(FileNotFoundError):
            self.host.socket.unlink()
        log = open(self.host.conf_dir / "service.log", "ab")  # noqa: SIM115, ASYNC230 - handed to the child
        try:
            self._process = await asyncio.create_subprocess_exec(
                self.host.config.binary, "system", "service", "--time=0", f"unix://{self.host.socket}",
                env=self.host.env(), stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True,
            )
        finally:
            log.close()
        (self.host.run_dir / "service.pid").write_text(str(self._process.pid))
        deadline = asyncio.get_running_loop().time() + timeout
        while not await self._answers():
            if self._process.returncode is not None:
                raise ConfigError(f"podman system service exited; see {self.host.conf_dir / 'service.log'}")
            if asyncio.get_running_loop().time() > deadline:
                raise ConfigError(f"podman system service did not answer on {self.host.socket} in {timeout:.0f}s")
            await asyncio.sleep(0.05)
        logger.info("started podman system service (pid %s) on %s", self._process.pid, self.host.socket)

    async def stop(self) -> None:
        """Stop the service this agent started (its containers keep running)."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 10.0)
        except TimeoutError:
            process.kill()
            await process.wait()


async def remove_everything(host: PodmanHost) -> None:
    """Remove every pod, container, image and network of this agent's Podman, then its files."""
    if host.containers_conf.exists():
        for args in (("pod", "rm", "--all", "--force", "--time=2"), ("system", "reset", "--force")):
            process = await asyncio.create_subprocess_exec(
                host.config.binary, *args, env=host.env(), stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )
            await process.wait()
    pid_file = host.run_dir / "service.pid"
    with contextlib.suppress(OSError, ValueError, ProcessLookupError):
        os.killpg(int(pid_file.read_text()), signal.SIGTERM)
    await asyncio.to_thread(shutil.rmtree, host.run_dir, True)
    await asyncio.to_thread(shutil.rmtree, host.conf_dir, True)
