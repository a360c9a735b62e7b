"""The ContainerRuntime Protocol: what the kubelet needs from a container engine, and nothing more.

Two implementations: ``kubelet.podman_runtime.PodmanRuntime`` (real pods through Podman's REST API) and
``kubelet.fake_runtime.FakeRuntime`` (in-memory, for hollow nodes and scale tests). Pod workers, the
relister, probes and the node status code see only this Protocol, so they run unchanged on either.

Model (a small subset of the CRI): one *sandbox* per API pod (a Podman pod: shared network, UTS and IPC
namespaces, the published host ports), holding *containers*. Every sandbox and container carries the
API pod's uid in its labels (``LABEL_POD_UID``) so a restarted agent can find and adopt them; a
container also carries its API container name, its restart attempt and a hash of the spec it was built
from (``LABEL_*``), so the kubelet can tell a restart from a spec change.

Streams (logs, exec with a terminal, stats) are a separate Protocol owned by the kubelet's HTTPS
endpoint; ``exec_probe`` here is only the short, captured exec that exec probes need.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol

LABEL_POD_UID = "io.edgek8s.pod.uid"
LABEL_POD_NAME = "io.edgek8s.pod.name"
LABEL_POD_NAMESPACE = "io.edgek8s.pod.namespace"
LABEL_CONTAINER_NAME = "io.edgek8s.container.name"
LABEL_ATTEMPT = "io.edgek8s.container.attempt"
LABEL_SPEC_HASH = "io.edgek8s.container.hash"
LABEL_INIT = "io.edgek8s.container.init"


class RuntimeFailure(Exception):
    """The runtime refused or failed an operation; the message is for events and logs."""


class ImageNotFound(RuntimeFailure):
    """The image is not present locally and could not be pulled."""


class ContainerState(StrEnum):
    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class PortMapping:
    container_port: int
    host_port: int
    protocol: str = "TCP"
    host_ip: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxConfig:
    uid: str
    name: str
    namespace: str
    hostname: str
    ports: tuple[PortMapping, ...] = ()
    host_network: bool = False
    cpu_limit_millis: int | None = None
    memory_limit_bytes: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Mount:
    host_path: str
    container_path: str
    read_only: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerConfig:
    """One container instance to create: everything already resolved (env values, host paths)."""

    name: str
    attempt: int
    spec_hash: str
    image: str
    init: bool = False
    entrypoint: tuple[str, ...] | None = None
    args: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    mounts: tuple[Mount, ...] = ()
    working_dir: str | None = None
    cpu_request_millis: int | None = None
    cpu_limit_millis: int | None = None
    memory_limit_bytes: int | None = None
    run_as_user: int | None = None
    run_as_group: int | None = None
    read_only_root: bool = False
    privileged: bool = False
    tty: bool = False
    stdin: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerStatus:
    id: str
    name: str
    attempt: int
    spec_hash: str
    init: bool
    state: ContainerState
    image: str
    image_id: str
    exit_code: int | None = None
    reason: str = ""
    created_at: str = ""
    started_at: str = ""
    finished_at: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxStatus:
    id: str
    uid: str
    name: str
    namespace: str
    ready: bool
    ip: str = ""
    created_at: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimePod:
    """What the runtime has for one API pod uid: its sandbox (if any) and every container instance."""

    uid: str
    sandboxes: tuple[SandboxStatus, ...] = ()
    containers: tuple[ContainerStatus, ...] = ()

    @property
    def sandbox(self) -> SandboxStatus | None:
        ready = [s for s in self.sandboxes if s.ready]
        return ready[0] if ready else (self.sandboxes[0] if self.sandboxes else None)

    def latest(self, name: str, *, init: bool = False) -> ContainerStatus | None:
        """The newest instance of container ``name`` (highest attempt)."""
        matches = [c for c in self.containers if c.name == name and c.init == init]
        return max(matches, key=lambda c: c.attempt) if matches else None


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageInfo:
    id: str
    names: tuple[str, ...]
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecResult:
    exit_code: int
    output: bytes


class ContainerRuntime(Protocol):
    """A container engine seen by the kubelet. Every method may raise ``RuntimeFailure``."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def version(self) -> str:
        """``<engine>://<version>``, as Node.status.nodeInfo.containerRuntimeVersion."""
        ...

    async def list_pods(self, *, uid: str | None = None) -> list[RuntimePod]:
        """Every sandbox and container labelled with a pod uid (one relist), or only those of ``uid``."""
        ...

    async def create_sandbox(self, config: SandboxConfig) -> SandboxStatus: ...

    async def remove_sandbox(self, sandbox_id: str, *, timeout: float) -> None:
        """Stop (SIGTERM, then SIGKILL after ``timeout``) and remove a sandbox with its containers."""
        ...

    async def image_id(self, image: str) -> str | None:
        """The id of ``image`` if it is present locally, else None."""
        ...

    async def pull_image(self, image: str) -> str:
        """Pull ``image`` and return its id; raises ``ImageNotFound``."""
        ...

    async def list_images(self) -> list[ImageInfo]: ...

    async def remove_image(self, image_id: str) -> None: ...

    async def import_image(self, archive: Path) -> list[str]:
        """Load an image archive (docker-archive or oci-archive); the names it brought."""
        ...

    async def create_container(self, sandbox_id: str, pod: SandboxConfig, config: ContainerConfig) -> str: ...

    async def start_container(self, container_id: str) -> None: ...

    async def stop_container(self, container_id: str, *, timeout: float) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds."""
        ...

    async def remove_container(self, container_id: str) -> None: ...

    async def exec_probe(self, container_id: str, command: list[str], *, timeout: float) -> ExecResult: ...

    async def wait_changes(self, timeout: float) -> set[str]:
        """Pod uids whose containers started or exited since the last call, waiting up to ``timeout``
        seconds for one. Best effort (an empty set does not prove that nothing changed: relist anyway)."""
        ...
