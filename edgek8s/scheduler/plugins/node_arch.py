"""NodeArchitecture (filter): a pod whose image platforms are known (the pod annotation
``edgek8s.io/image-platforms``, see ``scheduler.podinfo``) fits only nodes whose
``kubernetes.io/os``/``kubernetes.io/arch`` labels name one of them: an arm64-only image never lands
on an amd64 node. A node without an arch label is not trusted with such a pod. Variants
(``linux/arm/v7``) are compared on os/arch only."""

from __future__ import annotations

from edgek8s.scheduler.framework import Check
from edgek8s.scheduler.podinfo import PodInfo
from edgek8s.scheduler.snapshot import ARCH_LABEL, OS_LABEL, NodeInfo, Snapshot


class NodeArchitecture:
    name = "NodeArchitecture"

    def check_for(self, pod: PodInfo, snapshot: Snapshot) -> Check | None:
        if pod.platforms is None:
            return None
        allowed = frozenset("/".join(platform.split("/")[:2]) for platform in pod.platforms)
        reason = f"node(s) didn't match the image's platforms ({', '.join(sorted(allowed)) or 'none'})"

        def check(node: NodeInfo) -> str | None:
            arch = node.labels.get(ARCH_LABEL)
            if arch is None or f"{node.labels.get(OS_LABEL, 'linux')}/{arch}" not in allowed:
                return reason
            return None

        return check
