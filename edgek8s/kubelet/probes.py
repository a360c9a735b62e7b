"""Liveness, readiness and startup probes: one task per (container instance, probe kind).

```
 container running ──► startup probe (if any) ──success──► liveness + readiness probes
                           │ failureThreshold                 │ liveness failureThreshold
                           ▼                                  ▼
                      result False ──► on_change(uid) ──► pod worker kills and restarts per policy
```
Results are keyed by container id, so a restarted container starts over (not ready, not started).
A container without a readiness probe is ready once running; without a startup probe, started.
httpGet and tcpSocket probes connect from the node to the pod IP (plain asyncio streams);
exec probes run through the runtime with the probe's timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgek8s.kubelet.runtime import ContainerRuntime, RuntimeFailure

logger = logging.getLogger(__name__)
Obj = dict[str, Any]
KINDS = ("startupProbe", "livenessProbe", "readinessProbe")


@dataclass(slots=True)
class ProbeState:
    result: bool | None = None  # None: not decided yet
    successes: int = 0
    failures: int = 0
    message: str = ""


def _port(value: Any, container: Obj) -> int:
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return int(value)
    for port in container.get("ports") or []:
        if port.get("name") == value:
            return int(port["containerPort"])
    raise ValueError(f"named port {value!r} not found in the container")


async def http_get(
    host: str, port: int, path: str, *, headers: list[Obj], https: bool, timeout: float
) -> tuple[bool, str]:
    context = None
    if https:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # upstream's kubelet does not verify probe certificates either
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port, ssl=context)
        try:
            lines = [f"GET {path or '/'} HTTP/1.0", f"Host: {host}:{port}", "User-Agent: kube-probe/1.32"]
            lines += [f"{h['name']}: {h['value']}" for h in headers]
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
            await writer.drain()
            status_line = await reader.readline()
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()
    parts = status_line.split()
    code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    return 200 <= code < 400, f"HTTP probe failed with statuscode: {code}"


class ProbeManager:
    def __init__(self, runtime: ContainerRuntime, on_change: Callable[[str], None],
                 on_failure: Callable[[str, str, str], None] | None = None) -> None:
        self._runtime = runtime
        self._on_change = on_change
        self._on_failure = on_failure  # (pod uid, probe kind, message): the Unhealthy event
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}  # (container id, kind)
        self.states: dict[tuple[str, str], ProbeState] = {}

    async def run_probe(self, probe: Obj, *, container: Obj, container_id: str, pod_ip: str) -> tuple[bool, str]:
        timeout = float(probe.get("timeoutSeconds", 1))
        try:
            if "exec" in probe:
                result = await self._runtime.exec_probe(container_id, list(probe["exec"].get("command") or []),
                                                        timeout=timeout)
                return result.exit_code == 0, result.output.decode(errors="replace")[-1024:]
            if "httpGet" in probe:
                action = probe["httpGet"]
                return await http_get(str(action.get("host") or pod_ip), _port(action.get("port"), container),
                                      str(action.get("path", "/")), headers=list(action.get("httpHeaders") or []),
                                      https=str(action.get("scheme", "HTTP")).upper() == "HTTPS", timeout=timeout)
            if "tcpSocket" in probe:
                action = probe["tcpSocket"]
                async with asyncio.timeout(timeout):
                    _, writer = await asyncio.open_connection(str(action.get("host") or pod_ip),
                                                              _port(action.get("port"), container))
                writer.close()
                return True, ""
            return False, "probe has no handler"
        except TimeoutError:
            return False, f"probe timed out after {timeout:g}s"
        except (OSError, ValueError, RuntimeFailure, ssl.SSLError) as exc:
            return False, str(exc)

    def result(self, container_id: str, kind: str) -> bool | None:
        state = self.states.get((container_id, kind))
        return None if state is None else state.result

    def message(self, container_id: str, kind: str) -> str:
        state = self.states.get((container_id, kind))
        return "" if state is None else state.message

    def ensure(self, uid: str, container: Obj, container_id: str, pod_ip: str) -> None:
        """Start the probers of a running container instance (idempotent)."""
        for kind in KINDS:
            probe = container.get(kind)
            key = (container_id, kind)
            if probe and key not in self._tasks:
                self.states[key] = ProbeState()
                self._tasks[key] = asyncio.create_task(
                    self._loop(uid, kind, probe, container, container_id, pod_ip),
                    name=f"probe-{kind}-{container_id[:12]}",
                )

    async def stop(self, keep: set[str] | None = None, *, container_ids: set[str] | None = None) -> None:
        """Stop probers of the given container ids (all if None), keeping those in ``keep``."""
        doomed = [k for k in self._tasks if (container_ids is None or k[0] in container_ids)
                  and not (keep and k[0] in keep)]
        tasks = [self._tasks.pop(k) for k in doomed]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for key in doomed:
            self.states.pop(key, None)

    async def _loop(self, uid: str, kind: str, probe: Obj, container: Obj, container_id: str, pod_ip: str) -> None:
        state = self.states[(container_id, kind)]
        period = max(1.0, float(probe.get("periodSeconds", 10)))
        success_threshold = max(1, int(probe.get("successThreshold", 1)))
        failure_threshold = max(1, int(probe.get("failureThreshold", 3)))
        await asyncio.sleep(float(probe.get("initialDelaySeconds", 0)))
        while True:
            startup = self.states.get((container_id, "startupProbe"))
            if kind != "startupProbe" and startup is not None and startup.result is not True:
                await asyncio.sleep(min(period, 1.0))
                continue
            ok, message = await self.run_probe(probe, container=container, container_id=container_id, pod_ip=pod_ip)
            before = state.result
            if ok:
                state.successes, state.failures = state.successes + 1, 0
                if state.successes >= success_threshold:
                    state.result = True
            else:
                state.failures, state.successes = state.failures + 1, 0
                state.message = message
                if self._on_failure is not None:
                    self._on_failure(uid, kind, message)
                if state.failures >= failure_threshold:
                    state.result = False
            if state.result != before:
                logger.info("%s of container %s: %s", kind, container_id[:12],
                            "success" if state.result else f"failure ({state.message})")
                self._on_change(uid)
            if kind == "startupProbe" and state.result is True:
                return  # a startup probe stops once it has succeeded
            await asyncio.sleep(period)
