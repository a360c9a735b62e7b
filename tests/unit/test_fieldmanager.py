"""Server-side apply and managedFields bookkeeping, checked against what kube-apiserver 1.32 produces.

Expected fieldsV1 sets, conflict messages and entry orders are upstream's (structured-merge-diff and
k8s.io/apimachinery/pkg/util/managedfields); the kubectl flows are those of
kubectl-1.32-wire.md section 5. Every call goes through :func:`apply` or :func:`update`, which also check
that the inputs come back untouched and that the result shares no mutable value with them.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from edgek8s.registry.fieldmanager import (
    LAST_APPLIED_ANNOTATION,
    ApplyConflict,
    ApplyError,
    _created_fields,
    _recorded,
    _without_managed_fields,
    fields_of,
    record_update,
    server_side_apply,
)

T1 = "2024-05-01T10:00:00Z"
T2 = "2024-05-01T10:05:00Z"
T3 = "2024-05-01T10:10:00Z"
APPS = "apps/v1"


def _containers(value: Any) -> Iterator[int]:
    if isinstance(value, dict | list):
        yield id(value)
        for child in value.values() if isinstance(value, dict) else value:
            yield from _containers(child)


def _untouched(result: dict[str, Any], *inputs: Any) -> None:
    shared = set(_containers(result))
    for value in inputs:
        assert not shared & set(_containers(value)), "the result shares a mutable value with an input"


def apply(
    live: dict[str, Any] | None,
    config: dict[str, Any],
    manager: str = "kubectl",
    *,
    force: bool = False,
    now: str = T1,
) -> dict[str, Any]:
    kind, api_version = config["kind"], config["apiVersion"]
    before = (copy.deepcopy(live), copy.deepcopy(config))
    try:
        result = server_side_apply(
            live, config, manager=manager, force=force, kind=kind, api_version=api_version, now=now
        )
    finally:
        assert (live, config) == before, "an input was mutated"
    _untouched(result, live, config)
    return result


def update(
    old: dict[str, Any] | None, new: dict[str, Any], manager: str, *, now: str = T1, subresource: str = ""
) -> dict[str, Any]:
    before = (copy.deepcopy(old), copy.deepcopy(new))
    result = record_update(
        old, new, manager=manager, kind=new["kind"], api_version=new["apiVersion"], now=now, subresource=subresource
    )
    assert (old, new) == before, "an input was mutated"
    _untouched(result, old, new)
    return result


def entries(obj: dict[str, Any]) -> list[dict[str, Any]]:
    managed: list[dict[str, Any]] = obj["metadata"].get("managedFields", [])
    return managed


def entry(obj: dict[str, Any], manager: str, operation: str = "Apply") -> dict[str, Any]:
    found = [e for e in entries(obj) if e["manager"] == manager and e["operation"] == operation]
    assert len(found) == 1, f"expected one {operation} entry for {manager}, got {entries(obj)}"
    return found[0]


def owners(obj: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["manager"], e["operation"]) for e in entries(obj)]


def owns(obj: dict[str, Any], manager: str, *path: str, operation: str = "Apply") -> bool:
    node: Any = entry(obj, manager, operation)["fieldsV1"]
    for element in path:
        if element not in node:
            return False
        node = node[element]
    return node == {} or "." in node


def without_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(obj)
    result["metadata"].pop("managedFields", None)
    return result


def deployment(replicas: int = 1, image: str = "nginx:1.25", **extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": APPS,
        "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": "default", "labels": {"app": "nginx"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "nginx"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": image, "ports": [{"containerPort": 80}]}]},
            },
        },
    }
    obj["spec"].update(extra)
    return obj


def service(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "nginx", "namespace": "default"},
        "spec": {"selector": {"app": "nginx"}, "ports": [{"port": 80, "targetPort": 8080}], **spec},
    }


def configmap(data: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm", "namespace": "default", **meta},
        "data": data,
    }


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = obj["spec"]["template"]["spec"]["containers"]
    return found


# --- fields_of: the fieldsV1 of an object -------------------------------------------------------

DEPLOYMENT_APPLY_FIELDS = {
    "f:metadata": {"f:labels": {"f:app": {}}},
    "f:spec": {
        "f:replicas": {},
        "f:selector": {},
        "f:template": {
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:containers": {
                    'k:{"name":"nginx"}': {
                        ".": {},
                        "f:image": {},
                        "f:name": {},
                        "f:ports": {'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}},
                    }
                }
            },
        },
    },
}


def test_fields_of_a_deployment_is_what_upstream_records_for_an_apply() -> None:
    # containers keyed by name, ports by containerPort+protocol (protocol defaulted), the label
    # selector atomic, maps per key, list items members with "." when they also have fields below.
    fields = fields_of(deployment(), "Deployment", APPS)
    assert fields == DEPLOYMENT_APPLY_FIELDS
    assert json.dumps(fields).startswith('{"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:replicas"')


def test_fields_of_leaves_out_identity_server_metadata_and_managed_fields() -> None:
    obj = configmap(
        {"k": "v"},
        uid="u1",
        resourceVersion="7",
        creationTimestamp="2024-01-01T00:00:00Z",
        generation=3,
        selfLink="/api/v1/namespaces/default/configmaps/cm",
        managedFields=[{"manager": "x", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1"}],
    )
    assert fields_of(obj, "ConfigMap", "v1") == {"f:data": {"f:k": {}}}
    labelled = configmap({}, labels={"a": "1"}, annotations={"n": "x"})
    assert fields_of(labelled, "ConfigMap", "v1") == {
        "f:data": {},
        "f:metadata": {"f:annotations": {"f:n": {}}, "f:labels": {"f:a": {}}},
    }


def test_fields_of_ignores_status_on_the_main_resource_and_spec_on_the_status_subresource() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"nodeName": "n1"},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    assert fields_of(pod, "Pod", "v1") == {"f:spec": {"f:nodeName": {}}}
    assert fields_of(pod, "Pod", "v1", subresource="status") == {
        "f:status": {
            "f:conditions": {'k:{"type":"Ready"}': {".": {}, "f:status": {}, "f:type": {}}},
            "f:phase": {},
        }
    }


def test_fields_of_atomic_lists_sets_atomic_items_and_keyed_lists() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "p",
            "finalizers": ["b.io/x", "a.io/y"],
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u-1"}],
        },
        "spec": {
            "tolerations": [{"key": "k", "operator": "Exists"}],
            "imagePullSecrets": [{"name": "regcred"}],
            "volumes": [{"name": "data", "emptyDir": {}}],
            "containers": [
                {
                    "name": "c",
                    "args": ["-v", "2"],
                    "env": [
                        {"name": "A", "value": "1"},
                        {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    ],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                    "ports": [{"containerPort": 53, "protocol": "UDP"}, {"containerPort": 53}],
                }
            ],
        },
    }
    container = {
        ".": {},
        "f:args": {},
        "f:env": {
            'k:{"name":"A"}': {".": {}, "f:name": {}, "f:value": {}},
            'k:{"name":"B"}': {".": {}, "f:name": {}, "f:valueFrom": {"f:fieldRef": {}}},
        },
        "f:name": {},
        "f:ports": {
            'k:{"containerPort":53,"protocol":"TCP"}': {".": {}, "f:containerPort": {}},
            'k:{"containerPort":53,"protocol":"UDP"}': {".": {}, "f:containerPort": {}, "f:protocol": {}},
        },
        "f:volumeMounts": {'k:{"mountPath":"/data"}': {".": {}, "f:mountPath": {}, "f:name": {}}},
    }
    assert fields_of(pod, "Pod", "v1") == {
        "f:metadata": {
            "f:finalizers": {'v:"a.io/y"': {}, 'v:"b.io/x"': {}},
            "f:ownerReferences": {'k:{"uid":"u-1"}': {}},
        },
        "f:spec": {
            "f:containers": {'k:{"name":"c"}': container},
            "f:imagePullSecrets": {'k:{"name":"regcred"}': {}},
            "f:tolerations": {},
            "f:volumes": {'k:{"name":"data"}': {".": {}, "f:emptyDir": {}, "f:name": {}}},
        },
    }


def test_fields_of_a_kind_without_a_merge_table_has_atomic_lists() -> None:
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "l"},
        "spec": {"holderIdentity": "n1", "x": [1, 2]},
    }
    assert fields_of(lease, "Lease", "coordination.k8s.io/v1") == {"f:spec": {"f:holderIdentity": {}, "f:x": {}}}


# --- Apply: create, re-apply, change ------------------------------------------------------------


def test_apply_server_side_creates_a_service() -> None:
    # kubectl apply --server-side: PATCH ...?fieldManager=kubectl&force=false to a missing object.
    created = apply(None, service())
    assert without_managed_fields(created) == service()
    assert entries(created) == [
        {
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "v1",
            "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:spec": {
                    "f:ports": {'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:port": {}, "f:targetPort": {}}},
                    "f:selector": {"f:app": {}},
                }
            },
        }
    ]
    assert list(created["metadata"]) == ["name", "namespace", "managedFields"]


def test_reapplying_an_unchanged_config_changes_nothing_not_even_the_time() -> None:
    created = apply(None, service(), now=T1)
    again = apply(created, service(), now=T2)
    assert again == created
    assert entry(again, "kubectl")["time"] == T1


def test_applying_a_change_updates_the_object_and_the_time() -> None:
    created = apply(None, deployment(replicas=1), now=T1)
    changed = apply(created, deployment(replicas=3), now=T2)
    assert changed["spec"]["replicas"] == 3
    assert entry(changed, "kubectl")["time"] == T2
    assert entry(changed, "kubectl")["fieldsV1"] == DEPLOYMENT_APPLY_FIELDS


def test_apply_keeps_server_set_fields_and_fields_the_config_omits() -> None:
    live = apply(None, deployment())
    live["metadata"].update(uid="u-1", resourceVersion="5", creationTimestamp=T1, generation=1)
    live["spec"]["strategy"] = {"type": "RollingUpdate"}  # defaulted, owned by nobody
    live["status"] = {"replicas": 1}
    result = apply(live, deployment(image="nginx:1.26"), now=T2)
    assert containers(result)[0]["image"] == "nginx:1.26"
    assert result["metadata"]["uid"] == "u-1" and result["metadata"]["resourceVersion"] == "5"
    assert result["spec"]["strategy"] == {"type": "RollingUpdate"}
    assert result["status"] == {"replicas": 1}


def test_apply_with_a_status_merges_it_but_does_not_own_it() -> None:
    config = {**service(), "status": {"loadBalancer": {}}}
    created = apply(None, config)
    assert created["status"] == {"loadBalancer": {}}
    assert "f:status" not in entry(created, "kubectl")["fieldsV1"]


# --- Apply: ownership, conflicts, force ---------------------------------------------------------


def test_two_managers_applying_the_same_value_share_it_without_conflict() -> None:
    first = apply(None, configmap({"a": "1", "b": "2"}), "alice", now=T1)
    second = apply(first, configmap({"a": "1"}), "bob", now=T2)
    assert without_managed_fields(second) == without_managed_fields(first)
    assert owns(second, "alice", "f:data", "f:a") and owns(second, "bob", "f:data", "f:a")
    # Nothing changed, so upstream gives bob's new entry no time (it sorts first, as time 0).
    assert entries(second)[0] == {
        "manager": "bob",
        "operation": "Apply",
        "apiVersion": "v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:data": {"f:a": {}}},
    }
    assert entry(second, "alice")["time"] == T1
    # A field both own stays while either still applies it, and goes when the last one drops it.
    alice_drops = apply(second, configmap({"b": "2"}), "alice", now=T2)
    assert alice_drops["data"] == {"a": "1", "b": "2"}
    bob_drops = apply(alice_drops, configmap({}), "bob", now=T3)
    assert bob_drops["data"] == {"b": "2"}


def test_a_different_value_for_another_managers_field_is_a_conflict() -> None:
    first = apply(None, deployment(replicas=1), "alice")
    with pytest.raises(ApplyConflict) as caught:
        apply(first, deployment(replicas=2), "bob")
    conflict = caught.value
    assert conflict.conflicts == [("alice", APPS, ".spec.replicas")]
    assert conflict.message() == 'Apply failed with 1 conflict: conflict with "alice": .spec.replicas'
    assert str(conflict) == conflict.message()
    assert conflict.causes() == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "alice"', "field": ".spec.replicas"}
    ]
    assert conflict.code == 409
    assert conflict.status() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": conflict.message(),
        "reason": "Conflict",
        "details": {"causes": conflict.causes()},
        "code": 409,
    }


def test_conflicts_in_list_items_name_the_item_key() -> None:
    first = apply(None, deployment(image="nginx:1.25"), "alice")
    with pytest.raises(ApplyConflict) as caught:
        apply(first, deployment(image="nginx:1.26", replicas=5), "bob")
    assert caught.value.conflicts == [
        ("alice", APPS, ".spec.replicas"),
        ("alice", APPS, '.spec.template.spec.containers[name="nginx"].image'),
    ]
    assert caught.value.message() == (
        'Apply failed with 2 conflicts: conflicts with "alice":\n- .spec.replicas\n'
        '- .spec.template.spec.containers[name="nginx"].image'
    )


def test_force_moves_ownership_and_an_entry_owning_nothing_disappears() -> None:
    first = apply(None, configmap({"a": "1"}), "alice", now=T1)
    both = apply(first, configmap({"a": "1", "b": "2"}), "bob", now=T2)
    forced = apply(both, configmap({"a": "9"}), "carol", force=True, now=T3)
    assert forced["data"] == {"a": "9", "b": "2"}
    assert owners(forced) == [("bob", "Apply"), ("carol", "Apply")]  # alice owned only data.a
    assert entry(forced, "bob")["fieldsV1"] == {"f:data": {"f:b": {}}}
    assert entry(forced, "carol")["fieldsV1"] == {"f:data": {"f:a": {}}}


def test_atomic_lists_conflict_and_are_replaced_whole() -> None:
    def pod(args: list[str]) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "busybox", "args": args}]},
        }

    first = apply(None, pod(["a", "b"]), "alice")
    with pytest.raises(ApplyConflict) as caught:
        apply(first, pod(["c"]), "bob")
    assert caught.value.conflicts == [("alice", "v1", '.spec.containers[name="c"].args')]
    forced = apply(first, pod(["c"]), "bob", force=True)
    assert forced["spec"]["containers"][0]["args"] == ["c"]


def test_fields_an_update_took_from_an_applier_are_not_pruned_when_it_drops_them() -> None:
    applied = apply(None, configmap({"a": "1", "b": "2"}), "alice", now=T1)
    edited = copy.deepcopy(applied)
    edited["data"]["a"] = "edited"
    edited = update(applied, edited, "kubectl-edit", now=T2)
    assert entry(edited, "alice")["fieldsV1"] == {"f:data": {"f:b": {}}}
    assert entry(edited, "kubectl-edit", "Update")["fieldsV1"] == {"f:data": {"f:a": {}}}
    reapplied = apply(edited, configmap({"b": "2"}), "alice", now=T3)
    assert reapplied["data"] == {"a": "edited", "b": "2"}


# --- Apply: removal and list merging ------------------------------------------------------------


def test_removing_a_field_from_the_applied_config_removes_it_when_only_you_owned_it() -> None:
    labelled = deployment()
    labelled["metadata"]["labels"]["tier"] = "web"
    labelled["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "envoy"})
    first = apply(None, labelled, now=T1)
    second = apply(first, deployment(), now=T2)
    assert second["metadata"]["labels"] == {"app": "nginx"}
    assert [c["name"] for c in containers(second)] == ["nginx"]
    assert entry(second, "kubectl")["fieldsV1"] == DEPLOYMENT_APPLY_FIELDS


def test_dropping_the_last_label_removes_the_labels_map() -> None:
    first = apply(None, configmap({"a": "1"}, labels={"x": "1"}))
    second = apply(first, configmap({"a": "1"}), now=T2)
    assert "labels" not in second["metadata"]


def test_list_items_merge_by_key_and_keep_items_other_managers_added() -> None:
    first = apply(None, deployment(), "alice", now=T1)
    sidecar = deployment()
    sidecar["spec"] = {
        "template": {
            "spec": {"containers": [{"name": "sidecar", "image": "envoy", "env": [{"name": "X", "value": "1"}]}]}
        }
    }
    second = apply(first, sidecar, "bob", now=T2)
    assert [c["name"] for c in containers(second)] == ["nginx", "sidecar"]
    third = apply(second, deployment(image="nginx:1.26"), "alice", now=T3)
    assert [(c["name"], c["image"]) for c in containers(third)] == [("nginx", "nginx:1.26"), ("sidecar", "envoy")]
    assert containers(third)[1]["env"] == [{"name": "X", "value": "1"}]


def test_merged_list_order_follows_the_config_for_shared_items() -> None:
    def pod_with_env(names: list[str]) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "env": [{"name": n, "value": n} for n in names]}]},
        }

    first = apply(None, pod_with_env(["a", "b", "c"]), "alice")
    mine = apply(first, pod_with_env(["c", "a", "d"]), "bob")
    # b (only alice's) keeps its place, the shared items follow bob's order, d comes after a.
    assert [e["name"] for e in mine["spec"]["containers"][0]["env"]] == ["b", "c", "a", "d"]


def test_ports_with_the_same_number_and_different_protocols_are_distinct_items() -> None:
    dns = service(ports=[{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53}])
    created = apply(None, dns)
    assert set(entry(created, "kubectl")["fieldsV1"]["f:spec"]["f:ports"]) == {
        'k:{"port":53,"protocol":"TCP"}',
        'k:{"port":53,"protocol":"UDP"}',
    }
    udp_only = apply(created, service(ports=[{"name": "dns", "port": 53, "protocol": "UDP"}]), now=T2)
    assert udp_only["spec"]["ports"] == [{"name": "dns", "port": 53, "protocol": "UDP"}]


def test_a_null_in_the_config_is_owned_but_not_stored() -> None:
    created = apply(None, configmap({"a": "1"}, labels=None))
    assert "labels" not in created["metadata"]
    assert entry(created, "kubectl")["fieldsV1"] == {"f:data": {"f:a": {}}, "f:metadata": {"f:labels": {}}}


# --- Apply: refused configs ---------------------------------------------------------------------


def test_managed_fields_in_an_applied_config_are_refused() -> None:
    bad = configmap({"a": "1"}, managedFields=[])
    with pytest.raises(ApplyError) as caught:
        apply(None, bad)
    assert (str(caught.value), caught.value.code) == ("metadata.managedFields must be nil", 400)


def test_a_config_of_another_kind_or_version_is_refused() -> None:
    rs = {**deployment(), "kind": "ReplicaSet"}
    with pytest.raises(ApplyError) as caught:
        server_side_apply(None, rs, manager="kubectl", force=False, kind="Deployment", api_version=APPS, now=T1)
    assert (str(caught.value), caught.value.code) == ("invalid object type: apps/v1, Kind=ReplicaSet", 400)


def test_an_empty_manager_is_refused() -> None:
    with pytest.raises(ApplyError) as caught:
        apply(None, configmap({}), "")
    assert caught.value.code == 422


def test_list_items_without_their_key_or_repeated_are_refused_as_upstream_does() -> None:
    keyless = deployment()
    containers(keyless)[0]["ports"] = [{"name": "http"}]
    with pytest.raises(ApplyError) as caught:
        apply(None, keyless)
    assert caught.value.code == 500
    assert str(caught.value) == (
        "failed to create typed patch object (default/nginx; apps/v1, Kind=Deployment): "
        '.spec.template.spec.containers[name="nginx"].ports: element 0: associative list with keys has an '
        'element that omits key field "containerPort" (and doesn\'t have default value)'
    )
    twice = deployment()
    containers(twice).append({"name": "nginx", "image": "other"})
    with pytest.raises(ApplyError, match=r'containers: duplicate entries for key \[name="nginx"\]$'):
        apply(None, twice)


# --- managedFields order ------------------------------------------------------------------------


def test_entries_are_sorted_by_operation_time_manager_version_subresource() -> None:
    def raw(manager: str, operation: str, time: str, api_version: str = "v1", sub: str = "") -> dict[str, Any]:
        item = {
            "manager": manager,
            "operation": operation,
            "apiVersion": api_version,
            "time": time,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {f"f:{manager}{sub}{api_version}": {}}},
        }
        if sub:
            item["subresource"] = sub
        return item

    stored = [
        raw("zed", "Update", T1),
        raw("amy", "Update", T2),
        raw("bob", "Apply", T2),
        raw("amy", "Update", T2, sub="status"),
        raw("cat", "Apply", T1),
        raw("amy", "Update", T2, api_version="v0"),
    ]
    live = configmap({}, managedFields=stored)
    result = update(live, copy.deepcopy(live), "nobody", now=T3)
    assert [(e["operation"], e["manager"], e["apiVersion"], e.get("subresource", "")) for e in entries(result)] == [
        ("Apply", "cat", "v1", ""),
        ("Apply", "bob", "v1", ""),
        ("Update", "zed", "v1", ""),
        ("Update", "amy", "v0", ""),
        ("Update", "amy", "v1", ""),
        ("Update", "amy", "v1", "status"),
    ]
    assert list(entries(result)[0]) == ["manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1"]
    assert list(entries(result)[-1])[-1] == "subresource"


# --- record_update: ordinary writes -------------------------------------------------------------


def test_create_records_every_field_for_the_creator() -> None:
    created = update(None, deployment(), "kubectl-create")
    assert entries(created) == [
        {
            "manager": "kubectl-create",
            "operation": "Update",
            "apiVersion": APPS,
            "time": T1,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {},
                    "f:template": {
                        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                        "f:spec": {
                            "f:containers": {
                                'k:{"name":"nginx"}': {
                                    ".": {},
                                    "f:image": {},
                                    "f:name": {},
                                    "f:ports": {
                                        ".": {},
                                        'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}},
                                    },
                                }
                            }
                        },
                    },
                },
            },
        }
    ]


def test_create_does_not_record_status_on_the_main_resource() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        "status": {"phase": "Pending"},
    }
    created = update(None, pod, "kubectl-run")
    assert "f:status" not in entry(created, "kubectl-run", "Update")["fieldsV1"]


def test_an_update_takes_changed_fields_from_other_managers_and_removed_fields_from_all() -> None:
    created = update(None, configmap({"a": "1", "b": "2", "c": "3"}), "creator", now=T1)
    edited = copy.deepcopy(created)
    edited["data"] = {"a": "changed", "b": "2", "d": "4"}
    result = update(created, edited, "editor", now=T2)
    assert entry(result, "creator", "Update")["fieldsV1"] == {"f:data": {".": {}, "f:b": {}}}
    assert entry(result, "editor", "Update")["fieldsV1"] == {"f:data": {"f:a": {}, "f:d": {}}}
    assert entry(result, "editor", "Update")["time"] == T2
    assert entry(result, "creator", "Update")["time"] == T1


def test_an_update_merges_into_the_managers_previous_entry() -> None:
    created = update(None, configmap({"a": "1"}), "tool", now=T1)
    edited = copy.deepcopy(created)
    edited["data"]["b"] = "2"
    result = update(created, edited, "tool", now=T2)
    assert entries(result) == [
        {
            "manager": "tool",
            "operation": "Update",
            "apiVersion": "v1",
            "time": T2,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {".": {}, "f:a": {}, "f:b": {}}},
        }
    ]


def test_a_no_op_update_changes_no_entry() -> None:
    created = update(None, configmap({"a": "1"}), "creator", now=T1)
    again = update(created, copy.deepcopy(created), "someone-else", now=T2)
    assert again == created


def test_an_update_that_removes_everything_a_manager_owned_removes_its_entry() -> None:
    created = update(None, configmap({"a": "1"}), "creator", now=T1)
    mine = apply(created, configmap({"a": "1"}, labels={"l": "1"}), "applier", now=T2)
    shrunk = copy.deepcopy(mine)
    shrunk["data"] = {}
    result = update(mine, shrunk, "cleaner", now=T3)
    # The creator still owns the data map itself (its "."), so its entry stays...
    assert entry(result, "creator", "Update")["fieldsV1"] == {"f:data": {}}
    emptied = copy.deepcopy(result)
    del emptied["data"]
    result = update(result, emptied, "cleaner", now=T3)
    # ...until the map goes too; the applier lost data.a with it.
    assert owners(result) == [("applier", "Apply")]
    assert entry(result, "applier")["fieldsV1"] == {"f:metadata": {"f:labels": {"f:l": {}}}}


def test_a_status_subresource_update_gets_its_own_entry_and_ignores_spec() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    created = update(None, pod, "kubectl-run", now=T1)
    running = copy.deepcopy(created)
    running["status"] = {"phase": "Running"}
    running["spec"]["nodeName"] = "ignored"  # the status strategy resets spec; nor is it recorded
    result = update(created, running, "edgek8s-kubelet", now=T2, subresource="status")
    assert entries(result)[1] == {
        "manager": "edgek8s-kubelet",
        "operation": "Update",
        "apiVersion": "v1",
        "time": T2,
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:status": {"f:phase": {}}},  # no ".": a Go Pod always has a status struct
        "subresource": "status",
    }
    assert entries(result)[0] == entries(created)[0]


def test_more_than_ten_update_managers_fold_the_oldest_into_ancient_changes() -> None:
    obj = update(None, configmap({"k0": "v"}), "m00", now="2024-05-01T10:00:00Z")
    for n in range(1, 12):
        edited = copy.deepcopy(obj)
        edited["data"][f"k{n}"] = "v"
        obj = update(obj, edited, f"m{n:02d}", now=f"2024-05-01T10:{n:02d}:00Z")
    managers = [e["manager"] for e in entries(obj)]
    assert len(managers) == 10 and managers[0] == "ancient-changes"
    ancient = entry(obj, "ancient-changes", "Update")
    assert ancient["fieldsV1"] == {"f:data": {".": {}, "f:k0": {}, "f:k1": {}, "f:k2": {}}}
    assert ancient["time"] == "2024-05-01T10:02:00Z"


# --- record_update: explicit managedFields ------------------------------------------------------


def test_explicit_managed_fields_in_an_update_replace_the_stored_ones() -> None:
    created = update(None, configmap({"a": "1"}), "creator", now=T1)
    replaced = copy.deepcopy(created)
    replaced["metadata"]["managedFields"] = [
        {
            "manager": "someone",
            "operation": "Apply",
            "apiVersion": "v1",
            "time": T2,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:a": {}}},
        }
    ]
    result = update(created, replaced, "kubectl", now=T3)
    assert entries(result) == replaced["metadata"]["managedFields"]


def test_explicit_managed_fields_combine_with_the_writes_own_changes() -> None:
    created = update(None, configmap({"a": "1"}), "creator", now=T1)
    replaced = copy.deepcopy(created)
    replaced["data"]["b"] = "2"
    replaced["metadata"]["managedFields"] = [{}]  # the documented reset
    result = update(created, replaced, "writer", now=T2)
    assert owners(result) == [("writer", "Update")]
    assert entry(result, "writer", "Update")["fieldsV1"] == {"f:data": {"f:b": {}}}


@pytest.mark.parametrize(
    "given",
    [
        [],
        [{"manager": "x", "operation": "Bogus", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {}}],
        [{"manager": "x", "operation": "Apply", "apiVersion": "", "fieldsType": "FieldsV1", "fieldsV1": {}}],
        [{"manager": "x", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV2", "fieldsV1": {}}],
        [{"manager": "x", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"x": {}}}],
    ],
    ids=["empty", "bad-operation", "no-apiVersion", "bad-fieldsType", "bad-fieldsV1"],
)
def test_empty_or_undecodable_managed_fields_in_an_update_keep_the_stored_ones(given: list[Any]) -> None:
    created = update(None, configmap({"a": "1"}), "creator", now=T1)
    replaced = copy.deepcopy(created)
    replaced["metadata"]["managedFields"] = given
    assert update(created, replaced, "writer", now=T2) == created


def test_a_subresource_write_cannot_replace_managed_fields() -> None:
    created = update(None, configmap({"a": "1"}), "creator", now=T1)
    replaced = copy.deepcopy(created)
    replaced["metadata"]["managedFields"] = [{}]
    assert update(created, replaced, "writer", now=T2, subresource="status") == created


def test_a_write_that_only_changes_entry_times_keeps_the_old_times() -> None:
    created = update(None, configmap({"a": "1"}), "creator", now=T1)
    retimed = copy.deepcopy(created)
    retimed["metadata"]["managedFields"][0]["time"] = T3
    assert update(created, retimed, "writer", now=T2) == created


def test_managed_fields_never_appear_inside_fields_v1() -> None:
    created = update(None, configmap({"a": "1"}), "creator", now=T1)
    edited = copy.deepcopy(created)
    edited["data"]["a"] = "2"
    result = update(created, edited, "editor", now=T2)
    result = apply(result, configmap({"a": "2"}), "applier", now=T3)
    for item in entries(result):
        assert "f:managedFields" not in json.dumps(item["fieldsV1"])
        assert "f:name" not in item["fieldsV1"].get("f:metadata", {})


# --- The kubectl flows of the wire document -----------------------------------------------------


def csa_created(replicas: int = 1) -> dict[str, Any]:
    """What ``kubectl apply`` (client-side) creates: the manifest plus its last-applied annotation."""
    manifest = deployment(replicas=replicas)
    body = copy.deepcopy(manifest)
    annotation = json.dumps(manifest, separators=(",", ":"), sort_keys=True) + "\n"  # as Go encodes it
    body["metadata"]["annotations"] = {LAST_APPLIED_ANNOTATION: annotation}
    return update(None, body, "kubectl-client-side-apply", now=T1)


def test_csa_owns_the_last_applied_annotation_as_kubectl_migration_expects() -> None:
    live = csa_created()
    csa = entry(live, "kubectl-client-side-apply", "Update")["fieldsV1"]
    assert csa["f:metadata"]["f:annotations"] == {".": {}, f"f:{LAST_APPLIED_ANNOTATION}": {}}


def test_kubectl_server_side_apply_takes_over_from_client_side_apply_without_conflict() -> None:
    # lastAppliedManager: the manager "kubectl" may take fields whose live value still matches the
    # last-applied annotation; lastAppliedUpdater then rewrites the annotation to the new config.
    live = csa_created(replicas=1)
    result = apply(live, deployment(replicas=3), "kubectl", now=T2)
    assert result["spec"]["replicas"] == 3
    assert owns(result, "kubectl", "f:spec", "f:replicas")
    assert not owns(result, "kubectl-client-side-apply", "f:spec", "f:replicas", operation="Update")
    annotation = result["metadata"]["annotations"][LAST_APPLIED_ANNOTATION]
    assert json.loads(annotation) == deployment(replicas=3) and annotation.endswith("}\n")


def test_changing_replicas_that_client_side_apply_owns_is_a_conflict() -> None:
    # The live replicas no longer match the last-applied annotation (it says 2), so kubectl's upgrade
    # rule does not apply: the conflict kubectl prints as "error: Apply failed with 1 conflict: ...".
    live = csa_created(replicas=1)
    stale = copy.deepcopy(live)
    stale["metadata"]["annotations"][LAST_APPLIED_ANNOTATION] = json.dumps(deployment(replicas=2)) + "\n"
    with pytest.raises(ApplyConflict) as caught:
        apply(stale, deployment(replicas=3), "kubectl", now=T2)
    assert caught.value.message() == (
        'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas'
    )
    assert caught.value.causes() == [
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "kubectl-client-side-apply" using apps/v1',
            "field": ".spec.replicas",
        }
    ]
    # Another field manager never gets the upgrade rule.
    with pytest.raises(ApplyConflict, match="kubectl-client-side-apply"):
        apply(live, deployment(replicas=3), "ci", now=T2)


def test_force_conflicts_moves_replicas_from_client_side_apply() -> None:
    live = csa_created(replicas=1)
    result = apply(live, deployment(replicas=3), "ci", force=True, now=T2)
    assert result["spec"]["replicas"] == 3
    assert owns(result, "ci", "f:spec", "f:replicas")
    assert not owns(result, "kubectl-client-side-apply", "f:spec", "f:replicas", operation="Update")
    assert result["metadata"]["annotations"] == live["metadata"]["annotations"]  # only kubectl rewrites it


def test_the_whole_kubectl_upgrade_flow_settles_and_then_changes_nothing() -> None:
    live = csa_created(replicas=1)
    # 1. kubectl apply --server-side, unchanged manifest: no conflict, no change; kubectl shares fields.
    applied = apply(live, deployment(replicas=1), "kubectl", now=T2)
    assert without_managed_fields(applied) == without_managed_fields(live)
    # 2. kubectl-last-applied applies just the annotation.
    annotation = applied["metadata"]["annotations"][LAST_APPLIED_ANNOTATION]
    just_annotation = {
        "apiVersion": APPS,
        "kind": "Deployment",
        "metadata": {"annotations": {LAST_APPLIED_ANNOTATION: annotation}, "name": "nginx", "namespace": "default"},
    }
    applied = apply(applied, just_annotation, "kubectl-last-applied", now=T2)
    # 3. The migration: a JSON patch replacing managedFields, merging CSA's fields into kubectl's entry.
    migrated_entries = [e for e in copy.deepcopy(entries(applied)) if e["manager"] != "kubectl-client-side-apply"]
    kubectl_entry = next(e for e in migrated_entries if e["manager"] == "kubectl")
    kubectl_entry["fieldsV1"] = entry(applied, "kubectl-client-side-apply", "Update")["fieldsV1"]
    patched = copy.deepcopy(applied)
    patched["metadata"]["managedFields"] = migrated_entries
    migrated = update(applied, patched, "kubectl", now=T3)
    assert entries(migrated) == migrated_entries
    assert not any(e["operation"] == "Update" for e in entries(migrated))
    # 4. The re-sent apply keeps the annotation (kubectl-last-applied owns it) and changes nothing.
    settled = apply(migrated, deployment(replicas=1), "kubectl", now=T3)
    assert without_managed_fields(settled) == without_managed_fields(migrated)
    assert LAST_APPLIED_ANNOTATION in settled["metadata"]["annotations"]
    # 5. From now on replicas changes are kubectl's own: no conflict.
    scaled = apply(settled, deployment(replicas=4), "kubectl", now=T3)
    assert scaled["spec"]["replicas"] == 4
    assert json.loads(scaled["metadata"]["annotations"][LAST_APPLIED_ANNOTATION])["spec"]["replicas"] == 4


def test_output_is_deterministic() -> None:
    live = csa_created()
    first = apply(live, deployment(replicas=3), "kubectl", now=T2)
    second = apply(copy.deepcopy(live), deployment(replicas=3), "kubectl", now=T2)
    assert json.dumps(first) == json.dumps(second)


# --- The create cache (fields of a list-free create depend on its shape alone) ---------------------

_LIST_FREE = [
    ("ConfigMap", "v1", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "d"},
                         "data": {"k": "v", "e": ""}}),
    ("ConfigMap", "v1", {"metadata": {"name": "a", "labels": {}, "annotations": {"x": None}}, "data": {}}),
    ("ConfigMap", "v1", {"metadata": {"name": "a"}, "spec": {"selector": {"a": 1}}, "status": {"x": 1}}),
    ("Deployment", "apps/v1", {"metadata": {"name": "a"}, "spec": {"selector": {"a": 1}}, "status": {"x": 1}}),
    ("Deployment", "apps/v1", {"metadata": {"name": "a"}, "spec": {"replicas": 2, "template": {},
                                                                   "strategy": {"type": "Recreate"}}}),
    ("Lease", "coordination.k8s.io/v1", {"metadata": {"name": "n", "namespace": "kube-node-lease"},
                                         "spec": {"holderIdentity": "n", "leaseDurationSeconds": 40}}),
    ("Event", "v1", {"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p"}, "source": {}}),
    ("ConfigMap", "v1", {"metadata": {"name": "a"}, "spec": None}),
    ("ConfigMap", "v1", {}),
]


def _general(obj: dict[str, Any], kind: str, api_version: str, now: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    after = _without_managed_fields(obj)
    return _recorded(None, after, None, manager="m", kind=kind, api_version=api_version, now=now, subresource="")


@pytest.mark.parametrize(("kind", "api_version", "obj"), _LIST_FREE)
def test_a_cached_create_records_what_the_general_way_records(kind: str, api_version: str, obj: Any) -> None:
    _created_fields.cache_clear()
    for _ in range(2):  # a miss, then a hit
        result = record_update(None, copy.deepcopy(obj), manager="m", kind=kind, api_version=api_version,
                               now="2026-01-01T00:00:00Z")
        assert json.dumps(result) == json.dumps(_general(copy.deepcopy(obj), kind, api_version))
    assert _created_fields.cache_info().hits >= 1


def test_the_create_cache_is_keyed_by_kind_and_shares_nothing_with_its_callers() -> None:
    _created_fields.cache_clear()
    body = {"metadata": {"name": "a"}, "spec": {"selector": {"a": 1}}}
    deployment = record_update(None, copy.deepcopy(body), manager="m", kind="Deployment", api_version="apps/v1",
                               now="t")
    configmap = record_update(None, copy.deepcopy(body), manager="m", kind="ConfigMap", api_version="v1", now="t")
    # The same shape: a Deployment's selector is atomic (one leaf), a ConfigMap has no such rule.
    assert deployment["metadata"]["managedFields"][0]["fieldsV1"] == {"f:spec": {"f:selector": {}}}
    expected = {"f:spec": {"f:selector": {".": {}, "f:a": {}}}}
    assert configmap["metadata"]["managedFields"][0]["fieldsV1"] == expected
    assert configmap == _general(copy.deepcopy(body), "ConfigMap", "v1", now="t")
    configmap["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"].clear()  # a caller changing its result
    again = record_update(None, copy.deepcopy(body), manager="other", kind="ConfigMap", api_version="v1", now="u")
    assert again["metadata"]["managedFields"] == [{
        "manager": "other", "operation": "Update", "apiVersion": "v1", "time": "u", "fieldsType": "FieldsV1",
        "fieldsV1": expected,
    }]


def test_creates_with_lists_or_explicit_managed_fields_are_not_cached() -> None:
    _created_fields.cache_clear()
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    result = record_update(None, copy.deepcopy(pod), manager="m", kind="Pod", api_version="v1", now="t")
    assert result == _general(copy.deepcopy(pod), "Pod", "v1", now="t")
    explicit = {"metadata": {"name": "a", "managedFields": [{"manager": "x", "operation": "Apply", "apiVersion": "v1",
                                                             "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}}]},
                "data": {"k": "v"}}
    result = record_update(None, copy.deepcopy(explicit), manager="m", kind="ConfigMap", api_version="v1", now="t")
    assert [e["manager"] for e in result["metadata"]["managedFields"]] == ["x", "m"]
    assert _created_fields.cache_info().currsize == 0


def test_a_create_with_keys_beyond_the_budget_is_not_cached() -> None:
    # The cache keeps shapes, so their keys: a big object (here 200 data keys) takes the general path.
    _created_fields.cache_clear()
    big = {"metadata": {"name": "big"}, "data": {f"key-{i:04d}": "v" for i in range(200)}}
    result = record_update(None, copy.deepcopy(big), manager="m", kind="ConfigMap", api_version="v1", now="t")
    assert result == _general(copy.deepcopy(big), "ConfigMap", "v1", now="t")
    assert len(result["metadata"]["managedFields"][0]["fieldsV1"]["f:data"]) == 201  # the 200 and "."
    assert _created_fields.cache_info().currsize == 0
