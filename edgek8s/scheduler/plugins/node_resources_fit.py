"""NodeResourcesFit (filter): the pod's requests (CPU, memory, ephemeral storage, one pod slot) must
fit in the node's allocatable minus what placed and assumed pods request."""

from __future__ import annotations

from edgek8s.scheduler.framework import Check
from edgek8s.scheduler.podinfo import PodInfo
from edgek8s.scheduler.snapshot import NodeInfo, Snapshot


class NodeResourcesFit:
    name = "NodeResourcesFit"

    def check_for(self, pod: PodInfo, snapshot: Snapshot) -> Check | None:
        want = pod.requests

        def check(node: NodeInfo) -> str | None:
            free, used = node.allocatable, node.requested
            if used.pods + 1 > free.pods:
                return "Too many pods"
            if want.cpu and used.cpu + want.cpu > free.cpu:
                return "Insufficient cpu"
            if want.memory and used.memory + want.memory > free.memory:
                return "Insufficient memory"
            if want.storage and used.storage + want.storage > free.storage:
                return "Insufficient ephemeral-storage"
            return None

        return check
