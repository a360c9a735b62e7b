"""An in-memory ContainerRuntime for hollow nodes (kubemark-style scale tests) and kubelet unit tests.

Stateful, not a mock: sandboxes and containers have ids, states, attempts and timestamps; a started
container runs until stopped, or exits with ``exit_code`` after ``run_seconds`` when the test sets a
behaviour for its image (``behaviours[image]``). Images are present when listed in ``images``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from dataclasses import dataclass
from pathlib import Path

from edgek8s._util.waiting import wait_event
from edgek8s.kubelet.runtime import (
    ContainerConfig,
    ContainerState,
    ContainerStatus,
    ExecResult,
    ImageInfo,
    ImageNotFound,
    RuntimeFailure,
    RuntimePod,
    SandboxConfig,
    SandboxStatus,
)
from edgek8s.kubelet.status import now_rfc3339


@dataclass(frozen=True, slots=True)
class Behaviour:
    run_seconds: float | None = None  # None: runs until stopped
    exit_code: int = 0
    probe_exit_code: int = 0
    stop_seconds: float = 0.0  # how long it takes to exit on SIGTERM (SIGKILL at the stop timeout)


class FakeRuntime:
    def __init__(self, *, images: tuple[str, ...] = (), pod_cidr_prefix: str = "10.250.0.") -> None:
        self.images: dict[str, str] = {name: f"sha256:{abs(hash(name)):064x}"[:71] for name in images}
        self.behaviours: dict[str, Behaviour] = {}
        self.sandboxes: dict[str, SandboxStatus] = {}
        self.containers: dict[str, tuple[str, ContainerStatus]] = {}  # id -> (sandbox id, status)
        self._ids = itertools.count(1)
        self._prefix = pod_cidr_prefix
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._exits: dict[str, asyncio.Event] = {}  # container id -> set when it exits (stops in flight wait)
        self._changed: set[str] = set()
        self._wake = asyncio.Event()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    async def version(self) -> str:
        return "fake://1.0"

    async def list_pods(self, *, uid: str | None = None) -> list[RuntimePod]:
        uids = {s.uid for s in self.sandboxes.values()} | {self._uid_of(sid) for sid, _ in self.containers.values()}
        return [
            RuntimePod(uid=u, sandboxes=tuple(s for s in self.sandboxes.values() if s.uid == u),
                       containers=tuple(c for sid, c in self.containers.values() if self._uid_of(sid) == u))
            for u in uids if u and (uid is None or u == uid)
        ]

    def _uid_of(self, sandbox_id: str) -> str:
        sandbox = self.sandboxes.get(sandbox_id)
        return sandbox.uid if sandbox else sandbox_id.partition("/")[2]

    async def create_sandbox(self, config: SandboxConfig) -> SandboxStatus:
        number = next(self._ids)
        sandbox = SandboxStatus(id=f"sb{number}/{config.uid}", uid=config.uid, name=config.name,
                                namespace=config.namespace, ready=True,
                                ip=f"{self._prefix}{number % 250 + 2}", created_at=now_rfc3339())
        self.sandboxes[sandbox.id] = sandbox
        return sandbox

    async def remove_sandbox(self, sandbox_id: str, *, timeout: float) -> None:
        self.sandboxes.pop(sandbox_id, None)
        for cid in [cid for cid, (sid, _) in self.containers.items() if sid == sandbox_id]:
            await self.remove_container(cid)

    async def image_id(self, image: str) -> str | None:
        return self.images.get(image)

    async def pull_image(self, image: str) -> str:
        raise ImageNotFound(f"{image}: the fake runtime has no registry")

    async def list_images(self) -> list[ImageInfo]:
        return [ImageInfo(id=i, names=(n,), size=1_000_000) for n, i in self.images.items()]

    async def remove_image(self, image_id: str) -> None:
        self.images = {n: i for n, i in self.images.items() if i != image_id}

    async def import_image(self, archive: Path) -> list[str]:
        name = f"localhost/{archive.stem}:latest"
        self.images[name] = f"sha256:{abs(hash(name)):064x}"[:71]
        return [name]

    async def create_container(self, sandbox_id: str, pod: SandboxConfig, config: ContainerConfig) -> str:
        if sandbox_id not in self.sandboxes:
            raise RuntimeFailure(f"no such pod {sandbox_id}")
        if config.image not in self.images:
            raise ImageNotFound(config.image)
        cid = f"c{next(self._ids):08d}"
        self.containers[cid] = (sandbox_id, ContainerStatus(
            id=cid, name=config.name, attempt=config.attempt, spec_hash=config.spec_hash, init=config.init,
            state=ContainerState.CREATED, image=config.image, image_id=self.images[config.image],
            created_at=now_rfc3339()))
        return cid

    def _set(self, cid: str, **changes: object) -> None:
        sid, status = self.containers[cid]
        self.containers[cid] = (sid, dataclasses.replace(status, **changes))  # type: ignore[arg-type]

    async def start_container(self, container_id: str) -> None:
        if container_id not in self.containers:
            raise RuntimeFailure(f"no such container {container_id}")
        self._set(container_id, state=ContainerState.RUNNING, started_at=now_rfc3339())
        behaviour = self.behaviours.get(self.containers[container_id][1].image, Behaviour())
        if behaviour.run_seconds is not None:
            self._timers[container_id] = asyncio.get_running_loop().call_later(
                behaviour.run_seconds, self._exit, container_id, behaviour.exit_code)

    def _exit(self, container_id: str, code: int) -> None:
        self._timers.pop(container_id, None)
        if (exited := self._exits.pop(container_id, None)) is not None:
            exited.set()
        if container_id in self.containers and self.containers[container_id][1].state == ContainerState.RUNNING:
            self._set(container_id, state=ContainerState.EXITED, exit_code=code,
                      reason="Completed" if code == 0 else "Error", finished_at=now_rfc3339())
            self._changed.add(self._uid_of(self.containers[container_id][0]))
            self._wake.set()

    async def wait_changes(self, timeout: float) -> set[str]:
        if not self._changed:
            await wait_event(self._wake, timeout)
        self._wake.clear()
        changed, self._changed = self._changed, set()
        return changed

    async def stop_container(self, container_id: str, *, timeout: float) -> None:
        if container_id not in self.containers:
            return
        behaviour = self.behaviours.get(self.containers[container_id][1].image, Behaviour())
        if behaviour.stop_seconds > 0:  # as Podman's: returns once the container exited, whoever stopped it
            exited = self._exits.setdefault(container_id, asyncio.Event())
            await wait_event(exited, min(behaviour.stop_seconds, timeout))
        self._exit(container_id, 0 if 0 < behaviour.stop_seconds <= timeout else 137)

    async def remove_container(self, container_id: str) -> None:
        timer = self._timers.pop(container_id, None)
        if timer is not None:
            timer.cancel()
        self.containers.pop(container_id, None)
        if (exited := self._exits.pop(container_id, None)) is not None:
            exited.set()

    async def exec_probe(self, container_id: str, command: list[str], *, timeout: float) -> ExecResult:
        if container_id not in self.containers:
            raise RuntimeFailure(f"no such container {container_id}")
        behaviour = self.behaviours.get(self.containers[container_id][1].image, Behaviour())
        return ExecResult(exit_code=behaviour.probe_exit_code, output=b"")
