"""The real kubectl (and the official Python client) against one local edgek8s cluster per test session.

`edgek8s up` starts three masters in a temporary state dir; every kubectl call gets KUBECONFIG for that
cluster and a private HOME and cache dir, so kubectl's discovery and /version cache never leaks between runs
(nor in from the user's ~/.kube). Each call has a timeout: a hanging kubectl fails its test, not the session.

Fixtures (imported by tests/e2e/conftest.py):
  edgek8s_cluster  session: the running cluster (state dir, kubeconfig, API URL)
  kubectl          session: a callable `kubectl(*args, input=None, check=True, env=None, timeout=30)`
  ns               function: a fresh namespace for one test (deleted without waiting afterwards)
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any, NoReturn

import pytest
import yaml

KUBECTL = "/usr/bin/kubectl"
EDGEK8S = [sys.executable, "-m", "edgek8s"]
CALL_TIMEOUT = 30.0
# What kubectl must not inherit from the developer's shell: it would point it at another cluster or config.
_SCRUBBED = ("KUBECONFIG", "KUBECACHEDIR", "KUBE_EDITOR", "EDITOR", "KUBECTL_EXTERNAL_DIFF", "HTTPS_PROXY",
             "https_proxy", "HTTP_PROXY", "http_proxy")


@dataclasses.dataclass(frozen=True)
class Cluster:
    state_dir: Path
    kubeconfig: Path
    server: str  # the API URL the kubeconfig points at


def _edgek8s(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    # No kubelet renews the Leases of the nodes these tests register: without a long grace the node
    # lifecycle controller would turn them NotReady (and taint them) halfway through the session.
    env = {**os.environ, "EDGEK8S_NODE_MONITOR_GRACE_PERIOD": "86400"}
    return subprocess.run([*EDGEK8S, *args], capture_output=True, text=True, timeout=timeout, check=False, env=env)


def _master_logs(state_dir: Path) -> str:
    logs = []
    for log in sorted(state_dir.glob("master-*/log")):
        logs.append(f"--- {log} (tail)\n" + "\n".join(log.read_text(errors="replace").splitlines()[-30:]))
    return "\n".join(logs)


@pytest.fixture(scope="session")
def edgek8s_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    state_dir = tmp_path_factory.mktemp("kubectl-cluster") / "state"
    # No worker from `up`: the scheduler would place the rows' pods (images from a registry) on it. The stream
    # rows bring their own, tainted worker (tests/e2e/streams_support.py).
    up = _edgek8s("up", "--state-dir", str(state_dir), "--workers", "0")
    try:
        assert up.returncode == 0, f"edgek8s up failed:\n{up.stdout}{up.stderr}\n{_master_logs(state_dir)}"
        kubeconfig = state_dir / "admin.kubeconfig"
        server = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        yield Cluster(state_dir, kubeconfig, server)
    finally:
        _edgek8s("down", "--state-dir", str(state_dir))


@dataclasses.dataclass
class Kubectl:
    """kubectl bound to the session's cluster: call it like the command line, `kubectl("get", "pods")`."""

    cluster: Cluster
    home: Path

    def environment(self, env: Mapping[str, str] | None = None) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
        base.update(
            KUBECONFIG=str(self.cluster.kubeconfig),
            HOME=str(self.home),
            KUBECACHEDIR=str(self.home / ".kube" / "cache"),
            LANG="C.UTF-8",
        )
        base.update(env or {})
        return base

    def __call__(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        timeout: float = CALL_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        command = [KUBECTL, *args]
        try:
            result = subprocess.run(command, input=input, capture_output=True, text=True, timeout=timeout,
                                    env=self.environment(env), cwd=self.home, check=False)
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"kubectl {' '.join(args)} did not finish within {timeout} s; "
                        f"stdout so far: {exc.stdout!r} stderr: {exc.stderr!r}")
        if check:
            assert result.returncode == 0, (
                f"kubectl {' '.join(args)} exited {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
            )
        return result

    def popen(self, *args: str, env: Mapping[str, str] | None = None) -> Stream:
        """A long-running kubectl (`get -w`): its stdout lines are read on a thread; stop it with .close()."""
        process = subprocess.Popen([KUBECTL, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=self.environment(env), cwd=self.home)
        return Stream(process, " ".join(args))

    def json(self, *args: str) -> Any:
        """`kubectl ARGS -o json`, parsed."""
        return json.loads(self(*args, "-o", "json").stdout)


class Stream:
    def __init__(self, process: subprocess.Popen[str], what: str) -> None:
        self.process = process
        self.what = what
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._stderr: list[str] = []
        assert process.stdout is not None and process.stderr is not None
        for pipe, sink in ((process.stdout, self.lines.put), (process.stderr, self._stderr.append)):
            threading.Thread(target=self._pump, args=(pipe, sink), daemon=True).start()

    @staticmethod
    def _pump(pipe: IO[str], sink: Callable[[Any], None]) -> None:
        for line in pipe:
            sink(line.rstrip("\n"))
        sink(None)

    def next_line(self, predicate: Callable[[str], bool], timeout: float = 10.0) -> str:
        """The next stdout line for which predicate holds (lines before it are skipped but kept in .seen)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                self._fail(f"none within {timeout} s")
            if line is None:
                self.lines.put(None)  # stays ended for the next call
                self._fail(f"kubectl exited with {self.process.wait()}")
            self.seen.append(line)
            if predicate(line):
                return line

    def _fail(self, why: str) -> NoReturn:
        stderr = [x for x in self._stderr if x]
        pytest.fail(f"kubectl {self.what}: the expected line was not printed ({why}); stdout: {self.seen}; "
                    f"stderr: {stderr}")

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="session")
def kubectl(edgek8s_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(edgek8s_cluster, tmp_path_factory.mktemp("kubectl-home"))


def unique(prefix: str) -> str:
    """A DNS-1123 name no other test (or earlier run against the same cluster) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def manifest(*docs: Mapping[str, Any]) -> str:
    """YAML documents for `kubectl ... -f -`."""
    return yaml.safe_dump_all([dict(d) for d in docs], sort_keys=False)


@pytest.fixture
def ns(kubectl: Kubectl, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace of its own for one test, so listings only show that test's objects."""
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower().removeprefix("test_"))[:40].strip("-")
    name = unique(base or "t")
    kubectl("create", "-f", "-", input=manifest({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))
    yield name
    kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


# --- reading kubectl's printed tables -------------------------------------------------------------------

AGE = re.compile(r"^(\d+(y|d|h|m|s))+$|^<unknown>$|^<invalid>$")


def parse_table(text: str) -> tuple[list[str], list[dict[str, str]]]:
    """Header names and rows (column -> cell) of kubectl's column-aligned output.

    Columns are cut at the header's start offsets (kubectl's tabwriter left-aligns every cell under its
    header), so empty cells and cells with single spaces ("NOMINATED NODE", event messages) come out right.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return [], []
    header = lines[0]
    spans = [(m.start(), m.group()) for m in re.finditer(r"\S+(?: \S+)*", header)]
    names = [name for _, name in spans]
    rows = []
    for line in lines[1:]:
        cells = {}
        for i, (start, name) in enumerate(spans):
            end = spans[i + 1][0] if i + 1 < len(spans) else None
            cells[name] = line[start:end].strip()
        rows.append(cells)
    return names, rows


def split_cells(line: str) -> list[str]:
    """Cells of one line printed on its own (kubectl get -w flushes each event with its own widths)."""
    return re.split(r"\s{2,}", line.strip())
