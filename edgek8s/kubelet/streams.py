"""``ContainerStreams``: what the kubelet's streaming endpoint needs from a container runtime.

Logs, exec, port-forward, stats and image loading, independent of Podman, so a fake runtime (hollow
nodes) can serve the same endpoint. Containers are named the Kubernetes way (namespace, pod, pod uid,
container name); the runtime maps that to its own containers.

Invariants: every stream a method returns is owned by the caller, who must close it (``aclose`` for
iterators, ``close`` for sessions and connections); a container that does not exist raises
``errors.NotFound``; a runtime failure raises ``errors.ServiceUnavailable`` (never a third-party error).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True, kw_only=True)
class PodRef:
    namespace: str
    name: str
    uid: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerRef:
    pod: PodRef
    container: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LogOptions:
    follow: bool = False
    tail_lines: int | None = None
    since_seconds: int | None = None
    since_time: str | None = None  # RFC 3339
    timestamps: bool = False
    previous: bool = False
    limit_bytes: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecOptions:
    command: tuple[str, ...]
    stdin: bool = False
    stdout: bool = True
    stderr: bool = True
    tty: bool = False


STDOUT, STDERR = 1, 2


class ExecSession(Protocol):
    """One running command (exec) or main process (attach).

    ``output`` yields (STDOUT|STDERR, bytes) until the process's streams close."""

    def output(self) -> AsyncIterator[tuple[int, bytes]]: ...

    async def write_stdin(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None: ...

    async def resize(self, width: int, height: int) -> None: ...

    async def exit_code(self) -> int: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerUsage:
    name: str
    cpu_nanocores: int
    memory_bytes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PodUsage:
    pod: PodRef
    containers: tuple[ContainerUsage, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeUsage:
    cpu_nanocores: int
    memory_bytes: int
    timestamp: str  # RFC 3339, when the usage was measured
    window_seconds: float
    pods: tuple[PodUsage, ...] = ()


class ContainerStreams(Protocol):
    def logs(self, ref: ContainerRef, options: LogOptions) -> AsyncIterator[bytes]: ...

    async def exec(self, ref: ContainerRef, options: ExecOptions) -> ExecSession: ...

    async def attach(self, ref: ContainerRef, options: ExecOptions) -> ExecSession:
        """The container's main process (``options.command`` is ignored); its exit code ends the session."""
        ...

    async def port_forward(self, pod: PodRef, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]: ...

    async def usage(self) -> NodeUsage: ...

    async def load_image(self, archive: AsyncIterator[bytes]) -> list[str]: ...
