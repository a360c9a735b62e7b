"""NodePorts (filter): a host port (protocol, port, host IP; 0.0.0.0 meaning every IP) can be
used by one pod per node."""

from __future__ import annotations

from edgek8s.scheduler.framework import Check
from edgek8s.scheduler.podinfo import PodInfo
from edgek8s.scheduler.snapshot import NodeInfo, Snapshot

REASON = "node(s) didn't have free ports for the requested pod ports"


class NodePorts:
    name = "NodePorts"

    def check_for(self, pod: PodInfo, snapshot: Snapshot) -> Check | None:
        wanted = pod.host_ports
        if not wanted:
            return None

        def check(node: NodeInfo) -> str | None:
            used = node.ports
            if used and any(port.conflicts(other) for port in wanted for other in used):
                return REASON
            return None

        return check
