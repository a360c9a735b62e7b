"""NodeName (filter): a pod that names its node (``spec.nodeName``) fits only that node."""

from __future__ import annotations

from edgek8s.scheduler.framework import Check
from edgek8s.scheduler.podinfo import PodInfo
from edgek8s.scheduler.snapshot import NodeInfo, Snapshot

REASON = "node(s) didn't match the requested node name"


class NodeName:
    name = "NodeName"

    def check_for(self, pod: PodInfo, snapshot: Snapshot) -> Check | None:
        wanted = pod.node_name
        if not wanted:
            return None

        def check(node: NodeInfo) -> str | None:
            return None if node.name == wanted else REASON

        return check
