"""NodeAffinity: required terms filter (any term must match: ``matchExpressions`` with In, NotIn,
Exists, DoesNotExist, Gt, Lt on labels, ``matchFields`` on ``metadata.name``); preferred terms score
(the sum of the weights of the terms the node matches, scaled to the best node)."""

from __future__ import annotations

from edgek8s.scheduler.framework import Check, Scorer, normalize_by_max
from edgek8s.scheduler.plugins.node_selector import REASON
from edgek8s.scheduler.podinfo import PodInfo
from edgek8s.scheduler.snapshot import NodeInfo, Snapshot


class NodeAffinity:
    name = "NodeAffinity"
    weight = 2

    def check_for(self, pod: PodInfo, snapshot: Snapshot) -> Check | None:
        terms = pod.required_node_terms
        if terms is None:
            return None

        def check(node: NodeInfo) -> str | None:
            for term in terms:
                if term.matches(node.labels, node.name):
                    return None
            return REASON

        return check

    def scorer_for(self, pod: PodInfo, snapshot: Snapshot) -> Scorer | None:
        preferred = pod.preferred_node_terms
        if not preferred:
            return None

        def score(node: NodeInfo) -> int:
            return sum(weight for weight, term in preferred if term.matches(node.labels, node.name))

        return score

    def normalize(self, scores: list[int]) -> list[int]:
        return normalize_by_max(scores, reverse=False)
