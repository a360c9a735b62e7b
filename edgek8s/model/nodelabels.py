"""Which labels a node may set on its own Node (NodeRestriction's label rule), as pure functions.

Semantics follow upstream's NodeRestriction admission and ``k8s.io/kubelet/pkg/apis``:

- a label's namespace is the part of its key before ``/`` (none: empty);
- ``node-restriction.kubernetes.io/`` (and ``*.node-restriction.kubernetes.io/``) is always forbidden, so
  admins can label nodes for isolation without a compromised node claiming the label;
- any other label under ``kubernetes.io``/``k8s.io`` (or a subdomain of either) is forbidden unless it is
  a kubelet label: one of ``KUBELET_LABELS`` or in the namespaces ``kubelet.kubernetes.io`` /
  ``node.kubernetes.io`` (or their subdomains);
- every label outside those namespaces is allowed.

On create every label counts; on update only labels that were added, removed or given a new value, so a
node can keep writing back a forbidden label an admin set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

KUBELET_LABELS = frozenset({
    "kubernetes.io/hostname",
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
})
KUBELET_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")
KUBERNETES_NAMESPACES = ("kubernetes.io", "k8s.io")
NODE_RESTRICTION_NAMESPACE = "node-restriction.kubernetes.io"


def label_namespace(key: str) -> str:
    namespace, sep, _ = key.partition("/")
    return namespace if sep else ""


def _in(namespace: str, domain: str) -> bool:
    return namespace == domain or namespace.endswith("." + domain)


def is_kubelet_label(key: str) -> bool:
    """A label a kubelet may set although it is under kubernetes.io or k8s.io."""
    namespace = label_namespace(key)
    return key in KUBELET_LABELS or any(_in(namespace, domain) for domain in KUBELET_NAMESPACES)


def node_may_set(key: str) -> bool:
    namespace = label_namespace(key)
    if _in(namespace, NODE_RESTRICTION_NAMESPACE):
        return False
    if any(_in(namespace, domain) for domain in KUBERNETES_NAMESPACES):
        return is_kubelet_label(key)
    return True


def forbidden_labels(keys: Iterable[str]) -> list[str]:
    return sorted(key for key in set(keys) if not node_may_set(key))


def modified_labels(old: Mapping[str, str], new: Mapping[str, str]) -> set[str]:
    """Keys added, removed or given another value."""
    return {key for key in old.keys() | new.keys() if old.get(key) != new.get(key)}


def node_label_violation(old: Mapping[str, str] | None, new: Mapping[str, str]) -> str | None:
    """Why a node may not write ``new`` labels over ``old`` (``None``: a create), or None if it may."""
    if old is None:
        bad = forbidden_labels(new)
        return f"is not allowed to set the following labels: {', '.join(bad)}" if bad else None
    bad = forbidden_labels(modified_labels(old, new))
    return f"is not allowed to modify labels: {', '.join(bad)}" if bad else None
