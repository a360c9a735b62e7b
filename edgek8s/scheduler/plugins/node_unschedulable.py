"""NodeUnschedulable (filter): a cordoned node (``spec.unschedulable``) takes only pods that tolerate
``node.kubernetes.io/unschedulable:NoSchedule`` (DaemonSet pods do)."""

from __future__ import annotations

from edgek8s.scheduler.framework import Check
from edgek8s.scheduler.podinfo import PodInfo, Taint
from edgek8s.scheduler.snapshot import NodeInfo, Snapshot

TAINT = Taint("node.kubernetes.io/unschedulable", "", "NoSchedule")
REASON = "node(s) were unschedulable"


class NodeUnschedulable:
    name = "NodeUnschedulable"

    def check_for(self, pod: PodInfo, snapshot: Snapshot) -> Check | None:
        if not snapshot.any_cordoned or any(toleration.tolerates(TAINT) for toleration in pod.tolerations):
            return None

        def check(node: NodeInfo) -> str | None:
            return REASON if node.unschedulable else None

        return check
