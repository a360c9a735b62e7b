"""Scheduler plugins, one per file; ``default_framework`` wires the default profile.

Filters run cheapest and most selective first (a node is dropped at its first failing filter).
"""

from __future__ import annotations

from edgek8s.scheduler.framework import FilterPlugin, Framework, ScorePlugin
from edgek8s.scheduler.plugins.inter_pod_affinity import InterPodAffinity
from edgek8s.scheduler.plugins.least_allocated import LeastAllocated
from edgek8s.scheduler.plugins.node_affinity import NodeAffinity
from edgek8s.scheduler.plugins.node_arch import NodeArchitecture
from edgek8s.scheduler.plugins.node_name import NodeName
from edgek8s.scheduler.plugins.node_ports import NodePorts
from edgek8s.scheduler.plugins.node_readiness import NodeReadiness
from edgek8s.scheduler.plugins.node_resources_fit import NodeResourcesFit
from edgek8s.scheduler.plugins.node_selector import NodeSelector
from edgek8s.scheduler.plugins.node_unschedulable import NodeUnschedulable
from edgek8s.scheduler.plugins.pod_topology_spread import PodTopologySpread
from edgek8s.scheduler.plugins.selector_spread import SelectorSpread
from edgek8s.scheduler.plugins.taint_toleration import TaintToleration


def default_framework(*, seed: int = 0) -> Framework:
    taints, node_affinity, spread = TaintToleration(), NodeAffinity(), PodTopologySpread()
    filters: list[FilterPlugin] = [
        NodeName(), NodeUnschedulable(), NodeReadiness(), taints, NodeSelector(), node_affinity,
        NodeArchitecture(), NodeResourcesFit(), NodePorts(), InterPodAffinity(), spread,
    ]
    scores: list[ScorePlugin] = [LeastAllocated(), SelectorSpread(), node_affinity, taints, spread]
    return Framework(filters, scores, seed=seed)
