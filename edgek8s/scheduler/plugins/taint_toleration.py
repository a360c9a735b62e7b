"""TaintToleration: filter out nodes with a ``NoSchedule``/``NoExecute`` taint the pod does not
tolerate; score lower the nodes with more untolerated ``PreferNoSchedule`` taints."""

from __future__ import annotations

from edgek8s.scheduler.framework import Check, Scorer, normalize_by_max
from edgek8s.scheduler.podinfo import PodInfo
from edgek8s.scheduler.snapshot import NodeInfo, Snapshot


class TaintToleration:
    name = "TaintToleration"
    weight = 3

    def check_for(self, pod: PodInfo, snapshot: Snapshot) -> Check | None:
        if not snapshot.any_tainted:
            return None

        def check(node: NodeInfo) -> str | None:
            taint = pod.untolerated(node.taints)
            return None if taint is None else f"node(s) had untolerated taint {taint}"

        return check

    def scorer_for(self, pod: PodInfo, snapshot: Snapshot) -> Scorer | None:
        if not snapshot.any_tainted:
            return None
        tolerations = [t for t in pod.tolerations if t.effect in ("", "PreferNoSchedule")]

        def score(node: NodeInfo) -> int:
            return sum(
                1 for taint in node.taints
                if taint.effect == "PreferNoSchedule" and not any(t.tolerates(taint) for t in tolerations)
            )

        return score

    def normalize(self, scores: list[int]) -> list[int]:
        return normalize_by_max(scores, reverse=True)
