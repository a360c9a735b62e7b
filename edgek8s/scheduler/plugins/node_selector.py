"""NodeSelector (filter): every ``spec.nodeSelector`` label must be on the node with that value."""

from __future__ import annotations

from edgek8s.scheduler.framework import Check
from edgek8s.scheduler.podinfo import PodInfo
from edgek8s.scheduler.snapshot import NodeInfo, Snapshot

REASON = "node(s) didn't match Pod's node affinity/selector"  # upstream's, shared with NodeAffinity


class NodeSelector:
    name = "NodeSelector"

    def check_for(self, pod: PodInfo, snapshot: Snapshot) -> Check | None:
        wanted = tuple(pod.node_selector.items())
        if not wanted:
            return None

        def check(node: NodeInfo) -> str | None:
            labels = node.labels
            for key, value in wanted:
                if labels.get(key) != value:
                    return REASON
            return None

        return check
