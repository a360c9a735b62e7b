"""RaftStore: the object store the API serves, replicated by Raft.

Writes become commands proposed through ``RaftNode``; the result is what ``ClusterState.apply``
returned on this replica, so every master (leader or follower) serves writes the same way; PySyncObj
forwards a follower's command to the leader. Each command carries a request id: a write whose outcome
is unknown (leader lost mid-flight, timeout) is proposed again with the same id until the deadline,
and the state machine applies it at most once.

Reads:
- ``consistent=True`` (Kubernetes: resourceVersion unset) commits a barrier first, so the read sees
  every write acknowledged anywhere before it started (linearizable on every master);
- ``min_rv=N`` waits until this replica has published index N (resourceVersion=N, not older than);
- otherwise (resourceVersion=0) the local replica is read as is.

The proposer chooses uid and timestamps, so apply stays deterministic.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from edgek8s.config import ServerConfig
from edgek8s.model import errors
from edgek8s.model.resources import ResourceType, resource_id
from edgek8s.raft.node import NotCommitted, OutcomeUnknown, RaftNode
from edgek8s.store.state import ClusterState, Committed, StoredObject, encode_command
from edgek8s.store.watch import AppliedBridge, Predicate, Prefilter, Watcher, WatchHub

logger = logging.getLogger(__name__)

_PODS = resource_id("", "pods")
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def now_rfc3339() -> str:
    return _rfc3339(int(time.time()))


@functools.lru_cache(maxsize=2)
def _rfc3339(second: int) -> str:
    # Kubernetes timestamps have whole seconds: one strftime per second, not two per write.
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))


_UUID4_KEEP = 0xFFFFFFFF_FFFF_0FFF_3FFF_FFFFFFFFFFFF  # all bits but the version and the variant
_UUID4_SET = 0x00000000_0000_4000_8000_000000000000  # version 4, variant RFC 4122


def uuid4_string(bits: int) -> str:
    """``str(uuid.UUID(int=bits, version=4))`` for 128 random bits, in half the time."""
    text = f"{bits & _UUID4_KEEP | _UUID4_SET:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _unavailable_read(exc: Exception) -> errors.ServiceUnavailable:
    return errors.ServiceUnavailable(f"cannot serve a consistent read: {exc}", retry_after=1)


class RaftStore:
    def __init__(self, config: ServerConfig) -> None:
        self._config = config
        # uids and request ids need uniqueness, not secrecy: a per-process random generator seeded from
        # the OS avoids a getrandom() syscall per write (measurable at thousands of writes/s).
        self._random = random.Random(os.urandom(32))
        self._rid_prefix = self._random.getrandbits(64).to_bytes(8, "big").hex()
        self._rid_counter = itertools.count()
        self.hub = WatchHub(history=config.store.watch_history, queue_size=config.store.watcher_queue)
        self._bridge: AppliedBridge | None = None
        self.state = ClusterState(
            dedup_window=config.store.dedup_window, on_applied=self._on_applied, on_reset=self._on_reset
        )
        self.raft = RaftNode(config.raft, self.state)

    def _on_applied(self, events: list[Any], rv: int) -> None:
        if self._bridge is not None:
            self._bridge.on_applied(events, rv)

    def _on_reset(self, rv: int) -> None:
        if self._bridge is not None:
            self._bridge.on_reset(rv)

    async def start(self) -> None:
        self._bridge = AppliedBridge(asyncio.get_running_loop(), self.hub, post=self.raft.post_to_loop)
        await self.raft.start()

    async def stop(self) -> None:
        await self.raft.stop()

    async def ready(self, timeout: float) -> None:
        """Wait until a leader is known and this replica has caught up with it (a barrier applied)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                await self.raft.barrier()
                return
            except (NotCommitted, OutcomeUnknown):
                if time.monotonic() > deadline:
                    raise errors.ServiceUnavailable("the store has no raft leader") from None
                await asyncio.sleep(0.05)

    # --- writes --------------------------------------------------------------------------------------

    async def _propose(self, command: dict[str, Any], fence: int | None = None) -> Committed:
        if fence is not None:
            command["fence"] = fence
        command["rid"] = f"{self._rid_prefix}-{next(self._rid_counter)}"
        payload = encode_command(command)
        deadline = time.monotonic() + self._config.raft.propose_timeout
        # A retry is deduplicated only while the first attempt is still within apply's request-id memory.
        retry_horizon = self.state.rv + self._config.store.dedup_window // 2
        while True:
            remaining = deadline - time.monotonic()
            try:
                result = await self.raft.propose(payload, timeout=max(remaining, 0.001))
            except NotCommitted as exc:
                raise errors.ServiceUnavailable(f"the write was not accepted: {exc}", retry_after=1) from exc
            except OutcomeUnknown as exc:
                if time.monotonic() < deadline and self.state.rv < retry_horizon:
                    logger.info("retrying a write of unknown outcome: %s", exc)
                    continue
                raise errors.Timeout(
                    "the write did not complete in time; it may or may not have been applied"
                ) from exc
            if isinstance(result, errors.StatusError):
                raise result
            if not isinstance(result, Committed):
                raise errors.InternalError(f"unexpected apply result {result!r}")
            return result

    async def create(self, rtype: ResourceType, obj: dict[str, Any], *, fence: int | None = None) -> StoredObject:
        meta = obj["metadata"]
        if "uid" not in meta:
            meta["uid"] = uuid4_string(self._random.getrandbits(128))
        meta.setdefault("creationTimestamp", now_rfc3339())
        meta.pop("resourceVersion", None)
        committed = await self._propose(
            {"op": "create", "res": rtype.id, "ns": meta.get("namespace", ""), "name": meta["name"], "obj": obj},
            fence,
        )
        assert committed.obj is not None
        return committed.obj

    async def update(
        self,
        rtype: ResourceType,
        obj: dict[str, Any],
        *,
        expect_rv: int | None,
        subresource: str | None = None,
        fence: int | None = None,
        expect_uid: str | None = None,
    ) -> StoredObject:
        """``expect_uid``: the uid the writer meant (the body's), a precondition as on a delete, so a write
        for an object deleted meanwhile never lands on another created again under its name."""
        meta = obj["metadata"]
        command = {"op": "update", "res": rtype.id, "ns": meta.get("namespace", ""), "name": meta["name"],
                   "obj": obj, "expect_rv": expect_rv, "sub": subresource}
        if expect_uid:
            command["expect_uid"] = expect_uid
        committed = await self._propose(command, fence)
        assert committed.obj is not None
        return committed.obj

    async def delete(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        *,
        expect_uid: str | None = None,
        expect_rv: int | None = None,
        propagation: str | None = None,
        grace: tuple[int, str] | None = None,
        fence: int | None = None,
    ) -> StoredObject | None:
        """The deleted (or now deleting) object; None when a retried delete had already applied.

        ``propagation`` Foreground or Orphan adds the finalizer the garbage collector acts on.
        ``grace`` (pods: seconds, deadline) lets a bound pod terminate gracefully (``store.graceful``)."""
        committed = await self._propose(
            {
                "op": "delete",
                "res": rtype.id,
                "ns": namespace,
                "name": name,
                "expect_uid": expect_uid,
                "expect_rv": expect_rv,
                "propagation": propagation,
                "now": now_rfc3339(),
                **({"grace": grace[0], "deadline": grace[1]} if grace is not None else {}),
            },
            fence,
        )
        return committed.obj

    async def bind(
        self, namespace: str, name: str, *, node: str, expect_uid: str | None = None, fence: int | None = None
    ) -> StoredObject:
        """pods/binding: assign a pod to a node; Conflict when it is already assigned (someone else won)."""
        committed = await self._propose(
            {"op": "bind", "res": "/pods", "ns": namespace, "name": name, "node": node, "expect_uid": expect_uid,
             "now": now_rfc3339()},
            fence,
        )
        assert committed.obj is not None
        return committed.obj

    async def bind_many(
        self, bindings: list[tuple[str, str, str, str | None]], *, fence: int | None = None
    ) -> tuple[int, list[errors.StatusError | None]]:
        """Many pods/binding writes, ``(namespace, name, node, uid)``, in one Raft entry: its index, and
        per binding None (the pod is now on that node) or the error a single bind would have raised."""
        committed = await self._propose(
            {"op": "bind", "res": "/pods", "now": now_rfc3339(),
             "items": [{"ns": ns, "name": name, "node": node, "expect_uid": uid} for ns, name, node, uid in bindings]},
            fence,
        )
        results: list[errors.StatusError | None] = []
        for namespace, name, node, uid in bindings:
            pod, _rv = self.state.get(_PODS, namespace, name)
            if pod is None or (uid and pod.uid != uid):
                results.append(errors.not_found("pods", "", name))
                continue
            bound_to = (pod.extra_fields or {}).get("spec.nodeName")
            if bound_to == node:
                results.append(None)
            else:
                detail = f'pod {name} is already assigned to node "{bound_to}"' if bound_to else \
                    f"pod {name} is being deleted, cannot be assigned"
                results.append(errors.conflict("pods", "", name, detail))
        return committed.index, results

    async def claim_leadership(self, *, epoch: int, holder: str) -> int:
        """Record ``holder`` as the controllers' leader at ``epoch``; returns the index it committed at.

        Raises ``Fenced`` when an equal or newer epoch is held by someone else. Committing it is also a
        barrier: everything committed before is applied on this replica when it returns."""
        committed = await self._propose({"op": "claim-leadership", "epoch": epoch, "holder": holder})
        return committed.index

    async def register_master(self, *, name: str, raft_address: str, api_url: str) -> None:
        await self._propose({"op": "master", "name": name, "raft": raft_address, "api": api_url})

    async def forget_master(self, name: str) -> None:
        await self._propose({"op": "forget-master", "name": name})

    async def ensure_system_namespaces(self) -> None:
        from edgek8s.model.resources import by_id, resource_id

        namespaces = by_id(resource_id("", "namespaces"))
        for name in SYSTEM_NAMESPACES:
            existing, _ = self.state.get(namespaces.id, "", name)
            if existing is not None:
                continue
            obj = {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            }
            with contextlib.suppress(errors.AlreadyExists):
                await self.create(namespaces, obj)

    async def add_member(self, address: str) -> None:
        await self._change_membership(self.raft.add_member, address)

    async def remove_member(self, address: str) -> None:
        await self._change_membership(self.raft.remove_member, address)

    async def _change_membership(self, change: Callable[[str], Awaitable[None]], address: str) -> None:
        try:
            await change(address)
        except NotCommitted as exc:
            raise errors.Conflict(f"membership change refused: {exc}") from exc
        except OutcomeUnknown as exc:
            raise errors.Timeout(f"membership change of unknown outcome: {exc}") from exc

    # --- reads ---------------------------------------------------------------------------------------

    async def _read_point(self, *, consistent: bool, min_rv: int | None) -> None:
        if consistent:
            # A barrier is a no-op: when a leader change leaves its fate unknown, simply take another.
            deadline = time.monotonic() + self._config.raft.propose_timeout
            while True:
                try:
                    await self.raft.barrier()
                    return
                except OutcomeUnknown as exc:
                    if time.monotonic() > deadline:
                        raise _unavailable_read(exc) from exc
                except NotCommitted as exc:
                    raise _unavailable_read(exc) from exc
        elif min_rv:
            await self.wait_for_rv(min_rv)

    async def wait_for_rv(self, rv: int, timeout: float = 3.0) -> None:
        if not await self.hub.wait_for_progress(rv, timeout):
            raise errors.Timeout(f"Too large resource version: {rv}, current: {self.hub.progress_rv}",
                                 retry_after=1)

    async def get(
        self, rtype: ResourceType, namespace: str, name: str, *, consistent: bool, min_rv: int | None = None
    ) -> StoredObject:
        await self._read_point(consistent=consistent, min_rv=min_rv)
        obj, _rv = self.state.get(rtype.id, namespace, name)
        if obj is None:
            raise errors.not_found(rtype.plural, rtype.group, name)
        return obj

    async def list(
        self, rtype: ResourceType, namespace: str | None, *, consistent: bool, min_rv: int | None = None
    ) -> tuple[list[StoredObject], int]:
        await self._read_point(consistent=consistent, min_rv=min_rv)
        return self.state.list(rtype.id, namespace)

    def watch(self, rtype: ResourceType, namespace: str | None, from_rv: int, predicate: Predicate,
              prefilter: Prefilter | None = None) -> Watcher:
        return self.hub.watch(rtype.id, namespace, from_rv, predicate, prefilter)
