"""NodeRestriction's label rule as a table (upstream semantics: k8s.io/kubelet/pkg/apis, noderestriction)."""

from __future__ import annotations

import pytest

from edgek8s.model.nodelabels import modified_labels, node_label_violation, node_may_set


@pytest.mark.parametrize(("key", "allowed"), [
    ("kubernetes.io/hostname", True),
    ("kubernetes.io/arch", True),
    ("kubernetes.io/os", True),
    ("beta.kubernetes.io/arch", True),
    ("beta.kubernetes.io/os", True),
    ("beta.kubernetes.io/instance-type", True),
    ("node.kubernetes.io/instance-type", True),
    ("topology.kubernetes.io/region", True),
    ("topology.kubernetes.io/zone", True),
    ("failure-domain.beta.kubernetes.io/zone", True),
    ("failure-domain.beta.kubernetes.io/region", True),
    ("node.kubernetes.io/anything", True),            # the node.kubernetes.io namespace
    ("foo.node.kubernetes.io/x", True),                # and its subdomains
    ("kubelet.kubernetes.io/x", True),
    ("a.kubelet.kubernetes.io/x", True),
    ("app", True),                                     # no namespace
    ("example.com/rack", True),                        # any other namespace
    ("mykubernetes.io/x", True),                       # not a subdomain of kubernetes.io
    ("node-role.kubernetes.io/master", False),         # kubernetes.io, not a kubelet label
    ("kubernetes.io/role", False),
    ("topology.kubernetes.io/rack", False),
    ("beta.kubernetes.io/fluentd-ds-ready", False),
    ("k8s.io/x", False),
    ("sub.k8s.io/x", False),
    ("node-restriction.kubernetes.io/dedicated", False),  # always forbidden to nodes
    ("a.node-restriction.kubernetes.io/dedicated", False),
])
def test_which_labels_a_node_may_set(key: str, allowed: bool) -> None:
    assert node_may_set(key) is allowed


def test_modified_labels_are_added_removed_or_changed() -> None:
    assert modified_labels({"a": "1", "b": "2", "c": "3"}, {"a": "1", "b": "x", "d": "4"}) == {"b", "c", "d"}
    assert modified_labels({"a": ""}, {}) == {"a"}


def test_create_counts_every_label_update_only_the_changed_ones() -> None:
    admin_set = {"node-role.kubernetes.io/worker": "", "kubernetes.io/hostname": "pi"}
    assert node_label_violation(None, {"kubernetes.io/hostname": "pi", "rack": "3"}) is None
    reason = node_label_violation(None, admin_set)
    assert reason == "is not allowed to set the following labels: node-role.kubernetes.io/worker"
    # An admin's label may be written back unchanged; not changed or removed.
    assert node_label_violation(admin_set, {**admin_set, "rack": "4"}) is None
    assert node_label_violation(admin_set, {"kubernetes.io/hostname": "pi"}) == (
        "is not allowed to modify labels: node-role.kubernetes.io/worker")
    assert node_label_violation(admin_set, {**admin_set, "node-role.kubernetes.io/worker": "x",
                                            "node-restriction.kubernetes.io/a": "b"}) == (
        "is not allowed to modify labels: node-restriction.kubernetes.io/a, node-role.kubernetes.io/worker")
