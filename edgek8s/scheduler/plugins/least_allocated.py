"""LeastAllocated (score): prefer the node with the most CPU and memory left after placing the pod,
``(allocatable - requested) * 100 / allocatable`` averaged over both. Requests count as upstream's
non-zero requests (100m / 200Mi for a container that states none), so best-effort pods spread too."""

from __future__ import annotations

from edgek8s.scheduler.framework import MAX_SCORE, Scorer
from edgek8s.scheduler.podinfo import PodInfo
from edgek8s.scheduler.snapshot import NodeInfo, Snapshot


def _free_share(requested: int, allocatable: int) -> int:
    if allocatable <= 0 or requested > allocatable:
        return 0
    return (allocatable - requested) * MAX_SCORE // allocatable


class LeastAllocated:
    name = "NodeResourcesLeastAllocated"
    weight = 1

    def scorer_for(self, pod: PodInfo, snapshot: Snapshot) -> Scorer | None:
        cpu, memory = pod.nonzero.cpu, pod.nonzero.memory

        def score(node: NodeInfo) -> int:
            used, free = node.nonzero_requested, node.allocatable
            return (_free_share(used.cpu + cpu, free.cpu) + _free_share(used.memory + memory, free.memory)) // 2

        return score

    def normalize(self, scores: list[int]) -> list[int]:
        return scores
