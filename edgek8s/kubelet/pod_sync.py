"""``sync_pod``: make the runtime match one API pod, one step at a time (level-triggered).

```
 sandbox missing/dead ─► create sandbox (ports, network) ─► volumes ─► init containers in order
      ─► each app container: missing → create+start │ exited → restart per policy, after back-off
                             running + liveness/startup failed → kill, then restart per policy
                             spec changed → kill, recreate
```
Each pass reads the pod's runtime state fresh, takes whatever actions are due, and returns how soon
it wants to run again (a back-off ending, a container still starting). ``kill_pod`` stops every
container with the grace period (SIGTERM, then SIGKILL) and removes the sandbox and volumes.
The last computed status is handed to ``StatusWriter``; nothing here talks to the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from edgek8s._util.backoff import Backoff
from edgek8s.kubelet.podspec import PodConfigError, container_config, container_env, sandbox_config, spec_hash
from edgek8s.kubelet.probes import ProbeManager
from edgek8s.kubelet.runtime import (
    ContainerRuntime,
    ContainerState,
    ContainerStatus,
    ImageNotFound,
    RuntimeFailure,
    RuntimePod,
)
from edgek8s.kubelet.sources import ObjectSource
from edgek8s.kubelet.status import StatusWriter, SyncOutcome, Waiting, pod_status
from edgek8s.kubelet.volumes import VolumeManager

logger = logging.getLogger(__name__)
Obj = dict[str, Any]
KEEP_EXITED = 1  # exited instances kept per container besides the newest (for lastState and logs)


class EventSink(Protocol):
    def event(self, pod: Obj, kind: str, reason: str, message: str) -> None: ...


@dataclass(slots=True)
class RuntimeCache:
    """The last relist (the PLEG's view): a sync reuses it unless it acted on the pod since the list began."""

    pods: dict[str, RuntimePod] = field(default_factory=dict)
    listed_at: float = 0.0  # monotonic time the last full relist *started*; 0: never


@dataclass(slots=True)
class _Stop:
    """A kill under way: when its containers must be stopped by (loop time), and a wake-up when that moves."""

    deadline: float
    shortened: asyncio.Event = field(default_factory=asyncio.Event)

    def left(self) -> float:
        return max(0.0, self.deadline - asyncio.get_running_loop().time())


@dataclass(frozen=True, slots=True)
class SyncResult:
    requeue_after: float | None  # None: only on the next change or resync


class PodSyncer:
    def __init__(self, *, runtime: ContainerRuntime, volumes: VolumeManager, source: ObjectSource,
                 probes: ProbeManager, backoff: Backoff, events: EventSink, status: StatusWriter,
                 host_ip: Callable[[], str], cache: RuntimeCache | None = None) -> None:
        self.runtime = runtime
        self.volumes = volumes
        self.source = source
        self.probes = probes
        self.backoff = backoff
        self.events = events
        self.status = status
        self._host_ip = host_ip
        self.last_status: dict[str, Obj] = {}
        self.cache = cache or RuntimeCache()
        self._acted: dict[str, float] = {}  # uid -> when this syncer last changed its runtime state
        self._read: dict[str, tuple[float, RuntimePod]] = {}  # uid -> (when its last own read began, result)
        self._stops: dict[str, _Stop] = {}  # uid -> its kill under way

    def _touch(self, uid: str) -> None:
        self._acted[uid] = time.monotonic()

    def invalidate(self, uid: str) -> None:
        """The runtime reported a change to this pod: its next sync reads it afresh, not from the relist."""
        self._touch(uid)

    async def _known_pod(self, uid: str) -> RuntimePod:
        """The newest of the relist's view and this pod's last own read, when nothing was done to the pod
        (and the runtime reported no change) since it began; else a fresh read. A started pod's next
        sync (its status came back from the API) thus costs Podman nothing."""
        acted = self._acted.get(uid)
        read = self._read.get(uid)
        if read is not None and read[0] >= self.cache.listed_at and (acted is None or acted < read[0]):
            return read[1]
        if self.cache.listed_at and (acted is None or acted < self.cache.listed_at):
            return self.cache.pods.get(uid) or RuntimePod(uid=uid)
        return await self._runtime_pod(uid)

    async def _runtime_pod(self, uid: str) -> RuntimePod:
        started = time.monotonic()
        found = RuntimePod(uid=uid)
        for rp in await self.runtime.list_pods(uid=uid):
            if rp.uid == uid:
                found = rp
        self._read[uid] = (started, found)
        return found

    def _report(self, pod: Obj, rp: RuntimePod, outcome: SyncOutcome) -> None:
        uid = pod["metadata"]["uid"]
        for c in rp.containers:
            if c.state == ContainerState.RUNNING:
                readiness = self.probes.result(c.id, "readinessProbe")
                started = self.probes.result(c.id, "startupProbe")
                spec = self._spec(pod, c.name, init=c.init)
                outcome.started[c.id] = started is True or not (spec or {}).get("startupProbe")
                outcome.ready[c.id] = outcome.started[c.id] and (
                    readiness is True or not (spec or {}).get("readinessProbe"))
        previous = self.last_status.get(uid) or self.status.written(uid) or pod.get("status") or {}
        status = pod_status(pod, rp, outcome, host_ip=self._host_ip(), previous=previous)
        self.last_status[uid] = status
        self.status.set(pod, status)

    @staticmethod
    def _spec(pod: Obj, name: str, *, init: bool) -> Obj | None:
        key = "initContainers" if init else "containers"
        return next((c for c in (pod.get("spec") or {}).get(key) or [] if c.get("name") == name), None)

    async def sync_pod(self, pod: Obj) -> SyncResult:
        uid = pod["metadata"]["uid"]
        rp = await self._known_pod(uid)
        before = self._acted.get(uid)
        outcome = SyncOutcome()
        try:
            requeue = await self._converge(pod, rp, outcome)
        finally:
            if self._acted.get(uid) != before:
                rp = await self._runtime_pod(uid)
            self._report(pod, rp, outcome)
        return SyncResult(requeue)

    def _terminal(self, uid: str) -> bool:
        return (self.last_status.get(uid) or {}).get("phase") in ("Succeeded", "Failed")

    async def _converge(self, pod: Obj, rp: RuntimePod, outcome: SyncOutcome) -> float | None:
        uid = pod["metadata"]["uid"]
        spec = pod.get("spec") or {}
        grace = float(spec.get("terminationGracePeriodSeconds", 30))
        if self._terminal(uid):
            for c in rp.containers:
                if c.state == ContainerState.RUNNING:
                    self._touch(uid)
                    await self.runtime.stop_container(c.id, timeout=grace)
            return None
        sandbox = rp.sandbox
        if sandbox is None or not sandbox.ready:
            self._touch(uid)
            if sandbox is not None:
                self.events.event(pod, "Normal", "SandboxChanged",
                                  "Pod sandbox changed, it will be killed and re-created.")
                for old in rp.sandboxes:
                    await self.runtime.remove_sandbox(old.id, timeout=grace)
            try:
                sandbox = await self.runtime.create_sandbox(sandbox_config(pod))
            except RuntimeFailure as exc:
                self.events.event(pod, "Warning", "FailedCreatePodSandBox", str(exc))
                return 5.0
            rp = RuntimePod(uid=uid, sandboxes=(sandbox,))
        outcome.pod_ip = sandbox.ip
        try:
            paths = await self.volumes.prepare(pod, host_ip=self._host_ip(), pod_ip=sandbox.ip)
        except (PodConfigError, OSError) as exc:
            self.events.event(pod, "Warning", "FailedMount", str(exc))
            for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
                outcome.waiting[c["name"]] = Waiting(reason="ContainerCreating", message=str(exc))
            return 5.0
        policy = spec.get("restartPolicy", "Always")
        for container in spec.get("initContainers") or []:
            latest = rp.latest(container["name"], init=True)
            if latest is not None and latest.state == ContainerState.EXITED and latest.exit_code == 0:
                continue
            if latest is not None and latest.state == ContainerState.RUNNING:
                return None  # the relist tells us when it exits
            if latest is not None and latest.state == ContainerState.EXITED:
                if policy == "Never":
                    outcome.failed_message = f"init container {container['name']} failed"
                    return None
                key = f"{uid}/init/{container['name']}"
                remaining = self.backoff.remaining(key)
                if remaining > 0:  # a failing init container backs off like any other
                    outcome.waiting[container["name"]] = Waiting(
                        reason="CrashLoopBackOff", message=f"back-off restarting failed init container "
                        f"{container['name']}")
                    return remaining
                self.backoff.record_restart(key)
            return await self._start(pod, container, rp, sandbox.id, paths, outcome, init=True)
        requeue: list[float] = []
        for container in spec.get("containers") or []:
            delay = await self._sync_container(pod, container, rp, sandbox.id, paths, outcome, grace=grace)
            if delay is not None:
                requeue.append(delay)
        await self._prune(rp)
        return min(requeue) if requeue else None

    async def _sync_container(self, pod: Obj, container: Obj, rp: RuntimePod, sandbox_id: str,
                              paths: dict[str, str], outcome: SyncOutcome, *, grace: float) -> float | None:
        uid = pod["metadata"]["uid"]
        policy = (pod.get("spec") or {}).get("restartPolicy", "Always")
        latest = rp.latest(container["name"])
        if latest is None:
            return await self._start(pod, container, rp, sandbox_id, paths, outcome, init=False)
        if latest.state == ContainerState.RUNNING:
            reason = self._kill_reason(container, latest)
            if reason is None:
                self.probes.ensure(uid, container, latest.id, rp.sandbox.ip if rp.sandbox else "")
                return None
            self.events.event(pod, "Normal", "Killing", f"Container {container['name']} {reason}, will be restarted")
            await self.probes.stop(container_ids={latest.id})
            self._touch(uid)
            await self.runtime.stop_container(latest.id, timeout=grace)
            if latest.spec_hash != spec_hash(container):
                return await self._start(pod, container, rp, sandbox_id, paths, outcome, init=False)
            return 0.0  # resync at once: the exited container follows the restart policy
        if latest.state == ContainerState.CREATED:
            self._touch(uid)
            await self.runtime.start_container(latest.id)
            return None
        await self.probes.stop(container_ids={latest.id})
        restart = policy == "Always" or (policy == "OnFailure" and latest.exit_code != 0)
        if latest.spec_hash != spec_hash(container) and policy != "Never":
            restart = True
        if not restart:
            return None
        key = f"{uid}/{container['name']}"
        remaining = self.backoff.remaining(key)
        if remaining > 0:
            meta = pod["metadata"]
            message = (f"back-off {self.backoff_delay(key):g}s restarting failed container={container['name']} "
                       f"pod={meta['name']}_{meta.get('namespace', 'default')}({uid})")
            outcome.waiting[container["name"]] = Waiting(reason="CrashLoopBackOff", message=message)
            self.events.event(pod, "Warning", "BackOff", "Back-off restarting failed container "
                              f"{container['name']} in pod {pod['metadata']['name']}")
            return remaining
        self.backoff.record_restart(key)
        return await self._start(pod, container, rp, sandbox_id, paths, outcome, init=False)

    def backoff_delay(self, key: str) -> float:
        entry = self.backoff._entries.get(key)
        return entry[0] if entry else 0.0

    def _kill_reason(self, container: Obj, latest: ContainerStatus) -> str | None:
        if latest.spec_hash != spec_hash(container):
            return "definition changed"
        if container.get("livenessProbe") and self.probes.result(latest.id, "livenessProbe") is False:
            return "failed liveness probe"
        if container.get("startupProbe") and self.probes.result(latest.id, "startupProbe") is False:
            return "failed startup probe"
        return None

    async def _start(self, pod: Obj, container: Obj, rp: RuntimePod, sandbox_id: str, paths: dict[str, str],
                     outcome: SyncOutcome, *, init: bool) -> float | None:
        name = str(container["name"])
        latest = rp.latest(name, init=init)
        attempt = 0 if latest is None else latest.attempt + 1
        image = str(container["image"])
        try:
            if not await self._ensure_image(pod, container):
                message = f'Container image "{image}" is not present with pull policy of Never'
                outcome.waiting[name] = Waiting(reason="ErrImageNeverPull", message=message)
                return 10.0
            env = await container_env(pod, container, self.source, host_ip=self._host_ip(),
                                      pod_ip=rp.sandbox.ip if rp.sandbox else "")
            mounts = self.volumes.mounts(container, paths)
            config = container_config(pod, container, attempt=attempt, init=init, env=env, mounts=mounts)
        except PodConfigError as exc:
            outcome.waiting[name] = Waiting(reason="CreateContainerConfigError", message=str(exc))
            self.events.event(pod, "Warning", "Failed", f"Error: {exc}")
            return 5.0
        except ImageNotFound as exc:
            outcome.waiting[name] = Waiting(reason="ErrImagePull", message=str(exc))
            self.events.event(pod, "Warning", "Failed", f'Failed to pull image "{image}": {exc}')
            return 10.0
        sandbox = rp.sandbox
        assert sandbox is not None or sandbox_id
        self._touch(pod["metadata"]["uid"])
        try:
            container_id = await self.runtime.create_container(sandbox_id, sandbox_config(pod), config)
            await self.runtime.start_container(container_id)
        except RuntimeFailure as exc:
            outcome.waiting[name] = Waiting(reason="RunContainerError", message=str(exc))
            self.events.event(pod, "Warning", "Failed", f"Error: {exc}")
            return 5.0
        self.events.event(pod, "Normal", "Started", f"Started container {name}")
        return None

    async def _ensure_image(self, pod: Obj, container: Obj) -> bool:
        image = str(container["image"])
        untagged = image.endswith(":latest") or ":" not in image.rsplit("/", 1)[-1]
        policy = container.get("imagePullPolicy") or ("Always" if untagged else "IfNotPresent")
        present = await self.runtime.image_id(image)
        if policy == "Never":
            return present is not None
        if present is not None and policy == "IfNotPresent":
            return True
        if present is not None and policy == "Always":
            with contextlib.suppress(ImageNotFound):  # offline edge site: the local image stands in
                await self.runtime.pull_image(image)
            return True
        self.events.event(pod, "Normal", "Pulling", f'Pulling image "{image}"')
        await self.runtime.pull_image(image)
        self.events.event(pod, "Normal", "Pulled", f'Successfully pulled image "{image}"')
        return True

    async def _prune(self, rp: RuntimePod) -> None:
        """Remove exited instances older than the newest KEEP_EXITED + 1 of each container."""
        by_name: dict[tuple[str, bool], list[ContainerStatus]] = {}
        for c in rp.containers:
            by_name.setdefault((c.name, c.init), []).append(c)
        for instances in by_name.values():
            instances.sort(key=lambda c: c.attempt, reverse=True)
            for old in instances[KEEP_EXITED + 1:]:
                if old.state == ContainerState.EXITED:
                    self._touch(rp.uid)
                    await self.runtime.remove_container(old.id)

    async def kill_pod(self, uid: str, pod: Obj | None, *, grace: float | None = None) -> None:
        """Stop every container (SIGTERM, SIGKILL after the grace period), remove sandbox and volumes.
        ``shorten_grace`` while this runs brings the SIGKILL forward."""
        if grace is None:
            grace = float(((pod or {}).get("spec") or {}).get("terminationGracePeriodSeconds", 30))
        stop = self._stops[uid] = _Stop(asyncio.get_running_loop().time() + grace)
        try:
            rp = await self._runtime_pod(uid)
            running = [c for c in rp.containers if c.state == ContainerState.RUNNING]
            if pod is not None:
                for c in running:
                    self.events.event(pod, "Normal", "Killing", f"Stopping container {c.name}")
            await self.probes.stop(container_ids={c.id for c in rp.containers})
            await self._stop_containers(stop, [c.id for c in running])
            for sandbox in rp.sandboxes:
                await self.runtime.remove_sandbox(sandbox.id, timeout=stop.left())
        finally:
            self._stops.pop(uid, None)
        for c in rp.containers:  # containers whose sandbox is already gone
            await self.runtime.remove_container(c.id)
        await self.volumes.teardown(uid)
        self.backoff.forget_prefix(f"{uid}/")
        self.last_status.pop(uid, None)
        self._acted.pop(uid, None)
        self._read.pop(uid, None)
        self.cache.pods.pop(uid, None)

    def shorten_grace(self, uid: str, grace: float) -> bool:
        """A kill of ``uid`` under way now ends within ``grace`` (when that is sooner than its own deadline):
        upstream's podWorkers restart killPod with the shorter gracePeriodOverride. False: no kill of it
        runs (or it is past stopping containers), so the caller queues its own kill."""
        stop = self._stops.get(uid)
        if stop is None:
            return False
        deadline = asyncio.get_running_loop().time() + grace
        # Less than a second sooner is the same deadline seen again, later (the pod comes back with every
        # update or resync; deletionTimestamp has whole seconds): no second round of stops for that.
        if deadline < stop.deadline - 1.0:
            stop.deadline = deadline
            stop.shortened.set()
        return True

    async def _stop_containers(self, stop: _Stop, container_ids: list[str]) -> None:
        """Stop the containers within ``stop``'s deadline. When it is brought forward, they are stopped again
        with what is left: Podman SIGKILLs a container already stopping when the shorter timeout runs out
        (the first stop call then returns too)."""
        stops: list[asyncio.Future[Any]] = []  # the stop calls made with each deadline, newest last
        shortened: asyncio.Future[Any] | None = None
        try:
            while True:
                stop.shortened.clear()
                stops.append(asyncio.gather(*(self.runtime.stop_container(i, timeout=stop.left())
                                              for i in container_ids)))
                shortened = asyncio.ensure_future(stop.shortened.wait())
                await asyncio.wait([stops[-1], shortened], return_when=asyncio.FIRST_COMPLETED)
                shortened.cancel()
                if stops[-1].done():  # the newest stops returned: every container has stopped
                    break
            await stops[-1]
        finally:  # nothing left running or unretrieved, also when the kill is cancelled (the agent stops)
            pending = [*stops, *([shortened] if shortened is not None else [])]
            for call in pending:
                call.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
