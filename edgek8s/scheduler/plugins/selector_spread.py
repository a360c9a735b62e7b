"""SelectorSpread (score): spread the pods of one owner (the controller in ownerReferences: a
ReplicaSet, a Job) across nodes; the fewer of its pods a node has, the higher it scores."""

from __future__ import annotations

from edgek8s.scheduler.framework import Scorer, normalize_by_max
from edgek8s.scheduler.podinfo import PodInfo
from edgek8s.scheduler.snapshot import NodeInfo, Snapshot


class SelectorSpread:
    name = "SelectorSpread"
    weight = 2

    def scorer_for(self, pod: PodInfo, snapshot: Snapshot) -> Scorer | None:
        owner = pod.owner
        if not owner:
            return None

        def score(node: NodeInfo) -> int:
            return node.owners.get(owner, 0)

        return score

    def normalize(self, scores: list[int]) -> list[int]:
        return normalize_by_max(scores, reverse=True)
