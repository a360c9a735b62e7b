"""InterPodAffinity (filter): required pod anti-affinity and affinity over topology domains.

A domain is the value of the term's ``topologyKey`` label on a node (``kubernetes.io/hostname``
falls back to the node name when the label is missing, so per-node anti-affinity always holds).
- the pod's anti-affinity: no node in a domain holding a pod its term selects;
- existing pods' anti-affinity (symmetry): no node in a domain whose pod's term selects this pod;
- the pod's affinity: only nodes in a domain holding a selected pod, except for the first pod of a
  group (no pod selected anywhere, and the term selects the pod itself), as upstream.
Domains are computed once per pod from the snapshot (O(placed pods) for a pod with terms);
pods without terms cost nothing when no placed pod has anti-affinity.
"""

from __future__ import annotations

from edgek8s.scheduler.framework import Check
from edgek8s.scheduler.podinfo import HOSTNAME_LABEL, PodAffinityTerm, PodInfo
from edgek8s.scheduler.snapshot import NodeInfo, Snapshot

ANTI_REASON = "node(s) didn't match pod anti-affinity rules"
EXISTING_REASON = "node(s) didn't satisfy existing pods anti-affinity rules"
AFFINITY_REASON = "node(s) didn't match pod affinity rules"


def topology_value(node: NodeInfo, key: str) -> str | None:
    value = node.labels.get(key)
    if value is None and key == HOSTNAME_LABEL:
        return node.name
    return value


def _domains(term: PodAffinityTerm, snapshot: Snapshot) -> set[str]:
    found = set()
    for node in snapshot.nodes():
        value = topology_value(node, term.topology_key)
        if value is not None and value not in found and any(term.selects(p) for p in node.pods.values()):
            found.add(value)
    return found


class InterPodAffinity:
    name = "InterPodAffinity"

    def check_for(self, pod: PodInfo, snapshot: Snapshot) -> Check | None:
        existing: set[tuple[str, str]] = set()
        for node in snapshot.nodes_with_anti_affinity_pods():
            for other in node.anti_affinity_pods.values():
                for term in other.anti_affinity:
                    value = topology_value(node, term.topology_key)
                    if value is not None and term.selects(pod):
                        existing.add((term.topology_key, value))
        if not pod.anti_affinity and not pod.affinity and not existing:
            return None
        anti = [(term.topology_key, _domains(term, snapshot)) for term in pod.anti_affinity]
        affinity = []
        for term in pod.affinity:
            domains = _domains(term, snapshot)
            if domains or not term.selects(pod):
                affinity.append((term.topology_key, domains))

        def check(node: NodeInfo) -> str | None:
            for key, domains in anti:
                value = topology_value(node, key)
                if value is not None and value in domains:
                    return ANTI_REASON
            for key_value in existing:
                if topology_value(node, key_value[0]) == key_value[1]:
                    return EXISTING_REASON
            for key, domains in affinity:
                if topology_value(node, key) not in domains:
                    return AFFINITY_REASON
            return None

        return check
