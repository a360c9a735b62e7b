"""Preemption (upstream's DefaultPreemption PostFilter): where a pending pod could run if lower-priority
pods made room, and which ones. Pure: reads the snapshot, changes nothing.

For a pod that fits nowhere (and whose ``preemptionPolicy`` is not ``Never``), each node holding pods
of strictly lower priority is tried with all of them removed (``NodeInfo.without``) through the same
filters; on a node where the pod then fits, victims are *reprieved* one by one, most important
(highest priority) first, as long as the pod still fits: what remains is the minimal set in that order.
Among the candidate nodes the pick is upstream's ``pickOneNodeForPreemption`` order without its
PodDisruptionBudget and start-time criteria: the lowest highest-victim priority, then the lowest sum of
victim priorities, then the fewest victims, then the node name.

Limits (stated, as upstream computes more): cluster-wide filters (inter-pod affinity, topology spread)
are prepared once with the victims still counted, so a pod blocked only by such a rule is not helped
by preemption; victims are not ordered by start time.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgek8s.scheduler.framework import Check
from edgek8s.scheduler.podinfo import PodInfo
from edgek8s.scheduler.snapshot import NodeInfo, Snapshot

_OFFSET = 2**31  # upstream adds MaxInt32 + 1 so negative priorities still sum as costs


@dataclass(frozen=True, slots=True)
class Preemption:
    node: str
    victims: tuple[PodInfo, ...]


def _fits(checks: list[Check], node: NodeInfo) -> bool:
    return all(check(node) is None for check in checks)


def _victims_on(pod: PodInfo, node: NodeInfo, checks: list[Check]) -> list[PodInfo] | None:
    lower = [other for other in node.pods.values() if other.priority < pod.priority]
    if not lower:
        return None
    trial = node.without({other.key for other in lower})
    if not _fits(checks, trial):
        return None
    victims = []
    for other in sorted(lower, key=lambda o: (-o.priority, o.key)):
        trial.add(other)
        if not _fits(checks, trial):
            trial.remove(other.key)
            victims.append(other)
    return victims


def find_preemption(pod: PodInfo, snapshot: Snapshot, checks: list[Check]) -> Preemption | None:
    """The node and victims that let ``pod`` run, or None. ``checks``: the framework's filters for it."""
    if not pod.preempts or pod.invalid:
        return None
    best: tuple[tuple[int, int, int, str], Preemption] | None = None
    for node in snapshot.nodes():
        victims = _victims_on(pod, node, checks)
        if not victims:
            continue  # no lower-priority pod here, the pod does not fit even without them, or needs none
        rank = (max(v.priority for v in victims), sum(v.priority + _OFFSET for v in victims), len(victims), node.name)
        if best is None or rank < best[0]:
            best = (rank, Preemption(node.name, tuple(victims)))
    return None if best is None else best[1]
