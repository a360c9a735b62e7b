"""NodeReadiness (filter): a node that is not Ready, or under pressure, takes no new pods unless the
pod tolerates the matching taint.

The node lifecycle controller taints such nodes (``node.kubernetes.io/not-ready``,
``unreachable``, ``memory-pressure``, ...) as upstream's TaintNodesByCondition does, but it lags
behind the conditions; this plugin reads the conditions themselves and treats each as the implied
``NoSchedule`` taint, so a pod that tolerates it (a DaemonSet's) still lands and the others wait.
A taint already on the node is left to TaintToleration (one reason per node, not two).
"""

from __future__ import annotations

from edgek8s.scheduler.framework import Check
from edgek8s.scheduler.podinfo import PodInfo, Taint
from edgek8s.scheduler.snapshot import NodeInfo, Snapshot

NOT_READY = Taint("node.kubernetes.io/not-ready", "", "NoSchedule")
UNREACHABLE = Taint("node.kubernetes.io/unreachable", "", "NoSchedule")
PRESSURE = (
    ("MemoryPressure", Taint("node.kubernetes.io/memory-pressure", "", "NoSchedule")),
    ("DiskPressure", Taint("node.kubernetes.io/disk-pressure", "", "NoSchedule")),
    ("PIDPressure", Taint("node.kubernetes.io/pid-pressure", "", "NoSchedule")),
    ("NetworkUnavailable", Taint("node.kubernetes.io/network-unavailable", "", "NoSchedule")),
)


def implied_taints(node: NodeInfo) -> list[Taint]:
    """The NoSchedule taints the node's conditions imply (missing Ready counts as not ready)."""
    conditions = node.conditions
    ready = conditions.get("Ready")
    implied = [] if ready == "True" else [UNREACHABLE if ready == "Unknown" else NOT_READY]
    implied += [taint for condition, taint in PRESSURE if conditions.get(condition) == "True"]
    return implied


class NodeReadiness:
    name = "NodeReadiness"

    def check_for(self, pod: PodInfo, snapshot: Snapshot) -> Check | None:
        if not snapshot.any_not_just_ready:
            return None
        tolerated = frozenset(
            taint for taint in (NOT_READY, UNREACHABLE, *(t for _, t in PRESSURE))
            if any(toleration.tolerates(taint) for toleration in pod.tolerations)
        )

        def check(node: NodeInfo) -> str | None:
            if node.conditions.get("Ready") == "True" and len(node.conditions) == 1:
                return None  # the common case, decided with two look-ups
            explicit = {taint.key for taint in node.taints}
            for taint in implied_taints(node):
                if taint not in tolerated and taint.key not in explicit:
                    return f"node(s) had untolerated taint {taint}"
            return None

        return check
