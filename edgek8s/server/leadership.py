"""LeaderGate: run the leader-only loops (controllers, scheduler) on the Raft leader only, fenced.

    follower ──(raft leader, term T >= leader_epoch)──> claim(T) committed ──> term T running
       ^                                                                         │
       └──── not leader / term changed / leader_epoch > T / Fenced write ────────┘ (cancel all at once)

- Claiming commits ``claim-leadership(epoch=T)`` through Raft: when it returns, every entry of earlier
  terms is applied here (it is the barrier), and from then on ``apply`` rejects every write fenced with
  an older epoch. PySyncObj's ``_isLeader()`` can be true on two masters for a while (a leader cut off
  from the majority steps down after ``leader_fallback_timeout``, before a successor can be elected, but
  a starved one may not notice in time): the fence, not the belief, is what stops a deposed leader's
  writes.
- A term runs every loop in one TaskGroup with an ``InProcessClient`` fenced at T and one shared
  ``InformerFactory``; informers list after the claim, so their caches start at least as new as it.
- The Lease ``kube-system/edgek8s-controller`` shows the holder to ``kubectl get lease``; it is written
  when a term starts and renewed every ``renew_interval`` (60 s, ``leaseDurationSeconds`` 120) by the same
  fenced client. It is informational: Raft decides who leads (a successor rewrites it when its term
  starts), so it is renewed rarely: every renewal is a Raft entry fsynced on every master, ~1.6 pages of
  block writes each; at upstream's 2 s it was most of an idle cluster's SD-card writes (~3.4 kB/s/master),
  at 30 s still 2 of an idle minute's 9 entries (docs/raft.md, "Idle disk writes").
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from edgek8s._util.supervise import keep_running
from edgek8s._util.workqueue import ExponentialBackoff
from edgek8s.api.inprocess import InProcessClient, WriteLog
from edgek8s.client.informer import InformerFactory
from edgek8s.client.interface import ClusterClient
from edgek8s.client.loops import LeaderLoop
from edgek8s.model import errors
from edgek8s.model.resources import by_id, resource_id
from edgek8s.store.raftstore import RaftStore

logger = logging.getLogger(__name__)

LEASES = by_id(resource_id("coordination.k8s.io", "leases"))
LEASE_NAMESPACE, LEASE_NAME = "kube-system", "edgek8s-controller"
CONTROLLER_MANAGER = "kube-controller-manager"


@dataclass(slots=True)
class Term:
    """One term of this master as controller leader; times are ``time.monotonic()`` (see ``WriteLog``)."""

    epoch: int
    claim_index: int
    log: WriteLog
    started_at: float  # the claim committed; the loops start now
    ended_at: float | None = None  # every loop of the term has stopped


class LostLeadership(Exception):
    """This master no longer leads at the epoch its loops were started for."""


def micro_time() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderGate:
    def __init__(
        self,
        store: RaftStore,
        *,
        identity: str,
        loops: Sequence[LeaderLoop],
        lease_duration: int = 120,
        renew_interval: float = 60.0,
        check_interval: float = 0.05,
        resync: float = 300.0,
    ) -> None:
        self._store = store
        self.identity = identity
        self._loops = list(loops)
        self._lease_duration = lease_duration
        self._renew_interval = renew_interval
        self._check_interval = check_interval
        self._resync = resync
        self.epoch: int | None = None  # the epoch this master's loops run at, None when not leading
        self.terms: deque[Term] = deque(maxlen=32)

    async def run(self) -> None:
        """Until cancelled: wait for leadership, claim, run the loops, stop them when it is lost."""
        backoff: ExponentialBackoff[str] = ExponentialBackoff(base=0.05, cap=2.0, jitter=0.2)
        while True:
            epoch = await self._wait_for_leadership()
            try:
                claim_index = await self._store.claim_leadership(epoch=epoch, holder=self.identity)
            except errors.Fenced as exc:
                logger.info("leadership claim at epoch %d refused: %s", epoch, exc.message)
                await self._wait_for_new_term(epoch)
                continue
            except errors.StatusError as exc:
                logger.info("leadership claim at epoch %d failed: %s", epoch, exc.message)
                await asyncio.sleep(backoff.when("claim"))
                continue
            backoff.forget("claim")
            await self._lead(epoch, claim_index)

    async def _wait_for_leadership(self) -> int:
        raft, state = self._store.raft, self._store.state
        await self._wait_until(lambda: raft.is_leader and raft.term >= state.leader_epoch)
        return raft.term

    async def _wait_for_new_term(self, epoch: int) -> None:
        await self._wait_until(lambda: self._store.raft.term != epoch)

    async def _wait_until(self, condition: Callable[[], bool]) -> None:
        """Wake on every Raft role change, and every ``check_interval`` (terms and epochs change silently)."""
        raft = self._store.raft
        while not condition():
            raft.leadership_changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._check_interval):
                    await raft.leadership_changed.wait()

    def _leads(self, epoch: int) -> bool:
        raft, state = self._store.raft, self._store.state
        return raft.is_leader and raft.term == epoch and state.leader_epoch == epoch

    async def _lead(self, epoch: int, claim_index: int) -> None:
        self.epoch = epoch
        client = InProcessClient(self._store, manager=CONTROLLER_MANAGER, fence=epoch)
        term = Term(epoch=epoch, claim_index=claim_index, log=client.log, started_at=time.monotonic())
        self.terms.append(term)
        informers = InformerFactory(client, resync=self._resync)
        logger.info("master %s leads the controllers at epoch %d", self.identity, epoch)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._watch_leadership(epoch), name="leadership-watch")
                group.create_task(informers.run(), name="informers")
                group.create_task(self._maintain_lease(client), name="controller-lease")
                for loop in self._loops:
                    group.create_task(self._supervise(loop, client, informers), name=f"loop-{loop.name}")
        except BaseExceptionGroup as failures:
            term.ended_at = time.monotonic()
            await self._term_ended(epoch, failures)
        finally:
            term.ended_at = term.ended_at or time.monotonic()
            self.epoch = None

    async def _term_ended(self, epoch: int, failures: BaseExceptionGroup[BaseException]) -> None:
        ended, rest = failures.split((LostLeadership, errors.Fenced))
        if rest is not None and rest.split(Exception)[1] is not None:
            raise rest  # KeyboardInterrupt and the like are not ours to handle
        if ended is not None:
            fenced = ended.subgroup(errors.Fenced)
            if fenced is not None:
                logger.warning("master %s was fenced at epoch %d: %s", self.identity, epoch, fenced.exceptions[0])
            else:
                logger.info("master %s lost the controllers' leadership (epoch %d)", self.identity, epoch)
            return
        # A bug in the term's machinery (a loop's own failures restart that loop alone) must not end the
        # gate: the term ends, and the next one starts over from a claim.
        logger.error("master %s: the term at epoch %d failed", self.identity, epoch, exc_info=failures)
        await asyncio.sleep(min(self._renew_interval, 2.0))

    async def _watch_leadership(self, epoch: int) -> None:
        await self._wait_until(lambda: not self._leads(epoch))
        raise LostLeadership(epoch)

    async def _supervise(self, loop: LeaderLoop, client: ClusterClient, informers: InformerFactory) -> None:
        # Fenced ends the term for every loop; a deposed term's cancellation is never swallowed.
        await keep_running(f"leader loop {loop.name}", lambda: loop.run(client, informers), logger=logger,
                           fatal=(errors.Fenced,))

    def status(self) -> dict[str, Any]:
        """This master's terms as controller leader and what each wrote (for operators and history checks)."""
        return {
            "epoch": self.epoch,
            "terms": [{"epoch": t.epoch, "claimIndex": t.claim_index, "writes": t.log.writes,
                       "firstWriteIndex": t.log.first_index, "lastWriteIndex": t.log.last_index,
                       "fencedWrites": t.log.fenced, "attempts": t.log.attempts,
                       "firstAttemptAt": t.log.first_attempt_at, "lastAttemptAt": t.log.last_attempt_at,
                       "startedAt": t.started_at, "endedAt": t.ended_at}
                      for t in self.terms],
        }

    # --- the Lease -----------------------------------------------------------------------------------

    async def _maintain_lease(self, client: ClusterClient) -> None:
        lease: dict[str, Any] | None = None
        while True:
            try:
                lease = await self._renew(client, lease)
            except errors.Fenced:
                raise
            except errors.StatusError as exc:
                logger.info("renewing the controller lease failed: %s", exc.message)
                lease = None
                await asyncio.sleep(min(self._renew_interval, 0.5))
                continue
            await asyncio.sleep(self._renew_interval)

    async def _renew(self, client: ClusterClient, lease: dict[str, Any] | None) -> dict[str, Any]:
        now = micro_time()
        if lease is None:
            try:
                lease = await client.get(LEASES, LEASE_NAMESPACE, LEASE_NAME)
            except errors.NotFound:
                return await client.create(LEASES, {
                    "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": LEASE_NAME, "namespace": LEASE_NAMESPACE},
                    "spec": {"holderIdentity": self.identity, "leaseDurationSeconds": self._lease_duration,
                             "acquireTime": now, "renewTime": now, "leaseTransitions": 0},
                })
        spec = dict(lease.get("spec") or {})
        if spec.get("holderIdentity") != self.identity:
            spec["holderIdentity"] = self.identity
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        spec["leaseDurationSeconds"] = self._lease_duration
        spec["renewTime"] = now
        return await client.update(LEASES, {**lease, "spec": spec})
