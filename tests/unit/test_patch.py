"""PATCH formats: RFC 7386 and RFC 6902 appendix examples, strategic merge patch as upstream applies it
(including two bodies real kubectl 1.32 ``apply`` sends), dispatch by content type, and bad input.

Every application goes through :func:`applied`, which also checks that the inputs come back untouched
and that the result shares no mutable value with them.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from edgek8s.registry.patch import (
    PATCH_TYPES,
    PatchError,
    apply_patch,
    json_merge_patch,
    json_patch,
    strategic_merge_patch,
)

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


def _containers(value: Any) -> Iterator[int]:
    """ids of every dict and list inside ``value``."""
    if isinstance(value, dict | list):
        yield id(value)
        for child in value.values() if isinstance(value, dict) else value:
            yield from _containers(child)


def applied(function: Callable[..., dict[str, Any]], target: dict[str, Any], patch: Any, *args: Any) -> dict[str, Any]:
    """Apply, and check the inputs are unchanged and share nothing mutable with the result."""
    target_before, patch_before = copy.deepcopy(target), copy.deepcopy(patch)
    result = function(target, patch, *args)
    assert target == target_before, "the target was mutated"
    assert patch == patch_before, "the patch was mutated"
    assert not set(_containers(result)) & (set(_containers(target)) | set(_containers(patch)))
    return result


def rejected(function: Callable[..., dict[str, Any]], target: dict[str, Any], patch: Any, *args: Any) -> PatchError:
    """Apply expecting a PatchError, and check the inputs are unchanged."""
    target_before, patch_before = copy.deepcopy(target), copy.deepcopy(patch)
    with pytest.raises(PatchError) as caught:
        function(target, patch, *args)
    assert target == target_before, "the target was mutated"
    assert patch == patch_before, "the patch was mutated"
    assert str(caught.value).startswith("the patch is invalid: ")
    return caught.value


def directive_keys(value: Any) -> list[str]:
    """Every key starting with '$' anywhere in ``value``."""
    if isinstance(value, dict):
        own = [k for k in value if k.startswith("$")]
        return own + [k for v in value.values() for k in directive_keys(v)]
    if isinstance(value, list):
        return [k for v in value for k in directive_keys(v)]
    return []


def smp(target: dict[str, Any], patch: Any, kind: str, api_version: str) -> dict[str, Any]:
    result = applied(strategic_merge_patch, target, patch, kind, api_version)
    assert directive_keys(result) == []
    return result


# --- JSON merge patch: RFC 7386 appendix A -----------------------------------------------------

RFC7386 = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(
    ("original", "patch", "result"), [r for r in RFC7386 if isinstance(r[0], dict) and isinstance(r[1], dict)]
)
def test_merge_patch_rfc7386_examples(original: Any, patch: Any, result: Any) -> None:
    assert applied(json_merge_patch, original, patch) == result


@pytest.mark.parametrize(("original", "patch", "result"), [r for r in RFC7386 if r[1] is not None])
def test_merge_patch_rfc7386_examples_one_level_down(original: Any, patch: Any, result: Any) -> None:
    # A Kubernetes object is always an object, so the examples whose document is not one are checked
    # as the value of a member, where RFC 7386 gives them the same meaning.
    assert applied(json_merge_patch, {"x": original, "y": 1}, {"x": patch}) == {"x": result, "y": 1}


@pytest.mark.parametrize("patch", [r[1] for r in RFC7386 if not isinstance(r[1], dict)])
def test_merge_patch_that_is_not_an_object_is_rejected(patch: Any) -> None:
    error = rejected(json_merge_patch, {"a": "foo"}, patch)
    assert "must be a JSON object" in str(error)
    assert error.code == 400


def test_merge_patch_replaces_lists_and_drops_nulls_in_new_objects() -> None:
    target = {"metadata": {"finalizers": ["a", "b"], "labels": {"app": "web"}}}
    patch = {"metadata": {"finalizers": ["c"], "labels": {"tier": "fe", "app": None}, "new": {"x": None, "y": 1}}}
    assert applied(json_merge_patch, target, patch) == {
        "metadata": {"finalizers": ["c"], "labels": {"tier": "fe"}, "new": {"y": 1}}
    }


# --- JSON Patch: RFC 6902 appendix A -----------------------------------------------------------

RFC6902_SUCCESS = [
    (
        "A.1 add object member",
        {"foo": "bar"},
        [{"op": "add", "path": "/baz", "value": "qux"}],
        {"baz": "qux", "foo": "bar"},
    ),
    (
        "A.2 add array element",
        {"foo": ["bar", "baz"]},
        [{"op": "add", "path": "/foo/1", "value": "qux"}],
        {"foo": ["bar", "qux", "baz"]},
    ),
    ("A.3 remove object member", {"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
    (
        "A.4 remove array element",
        {"foo": ["bar", "qux", "baz"]},
        [{"op": "remove", "path": "/foo/1"}],
        {"foo": ["bar", "baz"]},
    ),
    (
        "A.5 replace value",
        {"baz": "qux", "foo": "bar"},
        [{"op": "replace", "path": "/baz", "value": "boo"}],
        {"baz": "boo", "foo": "bar"},
    ),
    (
        "A.6 move value",
        {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
        [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
        {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
    ),
    (
        "A.7 move array element",
        {"foo": ["all", "grass", "cows", "eat"]},
        [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
        {"foo": ["all", "cows", "eat", "grass"]},
    ),
    (
        "A.8 test success",
        {"baz": "qux", "foo": ["a", 2, "c"]},
        [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}],
        {"baz": "qux", "foo": ["a", 2, "c"]},
    ),
    (
        "A.10 add nested member object",
        {"foo": "bar"},
        [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
        {"foo": "bar", "child": {"grandchild": {}}},
    ),
    (
        "A.11 ignore unrecognized elements",
        {"foo": "bar"},
        [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
        {"foo": "bar", "baz": "qux"},
    ),
    ("A.14 ~ escape ordering", {"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}], {"/": 9, "~1": 10}),
    (
        "A.16 add array value",
        {"foo": ["bar"]},
        [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
        {"foo": ["bar", ["abc", "def"]]},
    ),
    # Beyond the appendix: pointer escapes, append, copy, root, null values, numeric equality.
    (
        "escaped slash and tilde",
        {"a/b": {"m~n": 1}},
        [{"op": "replace", "path": "/a~1b/m~0n", "value": 2}],
        {"a/b": {"m~n": 2}},
    ),
    ("empty member name", {"": {"": 1}}, [{"op": "replace", "path": "//", "value": 2}], {"": {"": 2}}),
    (
        "copy is deep",
        {"a": {"b": [1]}},
        [{"op": "copy", "from": "/a", "path": "/c"}, {"op": "add", "path": "/c/b/-", "value": 2}],
        {"a": {"b": [1]}, "c": {"b": [1, 2]}},
    ),
    ("add at the end index", {"a": [1]}, [{"op": "add", "path": "/a/1", "value": 2}], {"a": [1, 2]}),
    ("add replaces a member", {"a": 1}, [{"op": "add", "path": "/a", "value": None}], {"a": None}),
    ("replace the root", {"a": 1}, [{"op": "replace", "path": "", "value": {"b": 2}}], {"b": 2}),
    ("move to itself", {"a": 1}, [{"op": "move", "from": "/a", "path": "/a"}], {"a": 1}),
    (
        "test numbers by value",
        {"a": 1, "b": {"x": [1.0, None]}},
        [{"op": "test", "path": "/a", "value": 1.0}, {"op": "test", "path": "/b", "value": {"x": [1, None]}}],
        {"a": 1, "b": {"x": [1.0, None]}},
    ),
    ("test the whole document", {"a": 1}, [{"op": "test", "path": "", "value": {"a": 1}}], {"a": 1}),
    ("no operations", {"a": 1}, [], {"a": 1}),
]


@pytest.mark.parametrize(
    ("case", "original", "operations", "result"), RFC6902_SUCCESS, ids=[c[0] for c in RFC6902_SUCCESS]
)
def test_json_patch_examples(case: str, original: Any, operations: Any, result: Any) -> None:
    assert applied(json_patch, original, operations) == result


RFC6902_ERRORS = [
    ("A.9 test error", {"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}], "test failed"),
    (
        "A.12 add to nonexistent target",
        {"foo": "bar"},
        [{"op": "add", "path": "/baz/bat", "value": "qux"}],
        "does not exist",
    ),
    (
        "A.15 strings are not numbers",
        {"/": 9, "~1": 10},
        [{"op": "test", "path": "/~01", "value": "10"}],
        "test failed",
    ),
    ("true is not 1", {"a": 1}, [{"op": "test", "path": "/a", "value": True}], "test failed"),
    ("test a missing member", {"a": 1}, [{"op": "test", "path": "/b", "value": None}], "does not exist"),
    ("pointer without a slash", {"a": 1}, [{"op": "remove", "path": "a"}], "is not a JSON Pointer"),
    ("bad tilde escape", {"a~2": 1}, [{"op": "remove", "path": "/a~2"}], "'~' not followed"),
    ("leading zero index", {"a": [1, 2]}, [{"op": "remove", "path": "/a/01"}], "is not an array index"),
    ("index out of range", {"a": [1]}, [{"op": "replace", "path": "/a/1", "value": 2}], "out of range"),
    ("add beyond the end", {"a": [1]}, [{"op": "add", "path": "/a/2", "value": 2}], "out of range"),
    ("dash outside add", {"a": [1]}, [{"op": "remove", "path": "/a/-"}], "'-'"),
    ("descend into a scalar", {"a": 1}, [{"op": "add", "path": "/a/b/c", "value": 2}], "cannot look up"),
    ("replace a missing member", {"a": 1}, [{"op": "replace", "path": "/b", "value": 2}], "does not exist"),
    ("remove a missing member", {"a": 1}, [{"op": "remove", "path": "/b"}], "does not exist"),
    ("remove the root", {"a": 1}, [{"op": "remove", "path": ""}], "whole document"),
    ("move into own child", {"a": {"b": 1}}, [{"op": "move", "from": "/a", "path": "/a/b/c"}], "own children"),
    ("move from a missing member", {"a": 1}, [{"op": "move", "from": "/b", "path": "/c"}], "does not exist"),
    ("copy without from", {"a": 1}, [{"op": "copy", "path": "/c"}], "'from'"),
    ("add without value", {"a": 1}, [{"op": "add", "path": "/b"}], "no 'value'"),
    ("path not a string", {"a": 1}, [{"op": "remove", "path": 1}], "'path'"),
    ("unknown op", {"a": 1}, [{"op": "frobnicate", "path": "/a"}], "unknown op"),
    ("root replaced by a non-object", {"a": 1}, [{"op": "replace", "path": "", "value": [1]}], "JSON object"),
]


@pytest.mark.parametrize(
    ("case", "original", "operations", "message"), RFC6902_ERRORS, ids=[c[0] for c in RFC6902_ERRORS]
)
def test_json_patch_errors(case: str, original: Any, operations: Any, message: str) -> None:
    error = rejected(json_patch, original, operations)
    assert message in str(error)
    assert error.code == 422


def test_json_patch_is_all_or_nothing() -> None:
    operations = [{"op": "add", "path": "/b", "value": 2}, {"op": "test", "path": "/a", "value": 0}]
    error = rejected(json_patch, {"a": 1}, operations)
    assert "operation 1 (test '/a')" in str(error)


@pytest.mark.parametrize("operations", [{"op": "add"}, "add", None, [["add"]], [None]])
def test_json_patch_of_the_wrong_shape_is_a_bad_request(operations: Any) -> None:
    assert rejected(json_patch, {"a": 1}, operations).code == 400


def test_json_patch_rfc6902_a13_repeated_member_is_invalid() -> None:
    body = b'[{ "op": "add", "path": "/baz", "value": "qux", "op": "remove" }]'
    error = rejected(lambda t, p: apply_patch(t, p, JSON_PATCH, kind="", api_version=""), {"foo": "bar"}, body)
    assert "repeated member" in str(error)
    assert error.code == 400


# --- strategic merge patch: the bodies kubectl 1.32 apply sends --------------------------------


def live_deployment(
    *, labels: dict[str, str], strategy: dict[str, Any], containers: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "uid": "3f1c0d9e-8b1a-4c55-9d2e-6a7b8c9d0e1f",
            "resourceVersion": "4711",
            "generation": 2,
            "creationTimestamp": "2025-01-02T03:04:05Z",
            "labels": labels,
            "annotations": {
                "deployment.kubernetes.io/revision": "2",
                "kubectl.kubernetes.io/last-applied-configuration": '{"old":true}\n',
            },
        },
        "spec": {
            "replicas": 2,
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": strategy,
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": containers,
                    "dnsPolicy": "ClusterFirst",
                    "restartPolicy": "Always",
                    "schedulerName": "default-scheduler",
                    "terminationGracePeriodSeconds": 30,
                },
            },
        },
        "status": {
            "observedGeneration": 2,
            "replicas": 2,
            "readyReplicas": 2,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
            ],
        },
    }


ROLLING = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
NGINX = {
    "name": "nginx",
    "image": "nginx:1.25",
    "imagePullPolicy": "IfNotPresent",
    "ports": [{"containerPort": 80, "protocol": "TCP"}],
    "resources": {},
    "terminationMessagePath": "/dev/termination-log",
    "terminationMessagePolicy": "File",
}


def test_kubectl_apply_changing_image_and_replicas() -> None:
    live = live_deployment(labels={"app": "web"}, strategy=ROLLING, containers=[copy.deepcopy(NGINX)])
    last_applied = '{"apiVersion":"apps/v1","kind":"Deployment","spec":{"replicas":3}}\n'
    patch = json.loads(
        '{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":'
        + json.dumps(last_applied)
        + '}},"spec":{"replicas":3,"template":{"spec":{"$setElementOrder/containers":[{"name":"nginx"}],'
        '"containers":[{"image":"nginx:1.26","name":"nginx"}]}}}}'
    )
    expected = copy.deepcopy(live)
    expected["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = last_applied
    expected["spec"]["replicas"] = 3
    expected["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.26"
    assert smp(live, patch, "Deployment", "apps/v1") == expected


def test_kubectl_apply_reordering_deleting_and_retaining_keys() -> None:
    container_a = {
        "name": "a",
        "image": "nginx:1",
        "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
        "ports": [{"containerPort": 80, "protocol": "TCP"}],
        "resources": {"limits": {"memory": "64Mi"}},
    }
    container_b = {"name": "b", "image": "busybox", "command": ["sleep", "3600"]}
    live = live_deployment(
        labels={"tier": "frontend", "app": "web"},
        strategy=copy.deepcopy(ROLLING),
        containers=[container_a, container_b],
    )
    patch = json.loads("""
        {"metadata":{"labels":{"tier":null}},"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"},
         "template":{"spec":{"$setElementOrder/containers":[{"name":"c"},{"name":"a"}],
          "containers":[{"image":"redis","name":"c"},
                        {"$setElementOrder/env":[{"name":"X"}],
                         "$setElementOrder/ports":[{"containerPort":80},{"containerPort":443}],
                         "env":[{"$patch":"delete","name":"Y"}],"image":"nginx:2","name":"a",
                         "ports":[{"containerPort":443}]},
                        {"$patch":"delete","name":"b"}]}}}}""")
    expected = copy.deepcopy(live)
    expected["metadata"]["labels"] = {"app": "web"}
    expected["spec"]["strategy"] = {"type": "Recreate"}
    expected["spec"]["template"]["spec"]["containers"] = [
        {"image": "redis", "name": "c"},
        {
            "name": "a",
            "image": "nginx:2",
            "env": [{"name": "X", "value": "1"}],
            "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}],
            "resources": {"limits": {"memory": "64Mi"}},
        },
    ]
    assert smp(live, patch, "Deployment", "apps/v1") == expected


# --- strategic merge patch: semantics, table-driven --------------------------------------------


def pod(spec: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec, **extra}


SMP_CASES: list[tuple[str, str, str, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    (
        "service ports merge by port",
        "Service",
        "v1",
        {"spec": {"ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443, "targetPort": 443}]}},
        {"spec": {"ports": [{"port": 443, "targetPort": 8443}, {"name": "alt", "port": 8080}]}},
        {
            "spec": {
                "ports": [
                    {"name": "http", "port": 80},
                    {"name": "https", "port": 443, "targetPort": 8443},
                    {"name": "alt", "port": 8080},
                ]
            }
        },
    ),
    (
        "env var updated by name",
        "Pod",
        "v1",
        pod({"containers": [{"name": "app", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]}),
        {"spec": {"containers": [{"name": "app", "env": [{"name": "B", "value": "3"}]}]}},
        pod({"containers": [{"name": "app", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]}]}),
    ),
    (
        "env var deleted by name",
        "Pod",
        "v1",
        pod({"containers": [{"name": "app", "env": [{"name": "A"}, {"name": "B"}, {"name": "C"}]}]}),
        {"spec": {"containers": [{"name": "app", "env": [{"$patch": "delete", "name": "B"}]}]}},
        pod({"containers": [{"name": "app", "env": [{"name": "A"}, {"name": "C"}]}]}),
    ),
    (
        # Upstream's ordering: without $setElementOrder a new item goes before the server-only items
        # that follow it (kubectl patch adds a container at the front).
        "new list item without an order goes first",
        "Pod",
        "v1",
        pod({"containers": [{"name": "a"}, {"name": "b"}]}),
        {"spec": {"containers": [{"name": "c", "image": "x"}]}},
        pod({"containers": [{"name": "c", "image": "x"}, {"name": "a"}, {"name": "b"}]}),
    ),
    (
        "volume mounts by mountPath, volumes by name",
        "Pod",
        "v1",
        pod(
            {
                "containers": [{"name": "a", "volumeMounts": [{"name": "v", "mountPath": "/data"}]}],
                "volumes": [{"name": "v", "emptyDir": {}}],
            }
        ),
        {
            "spec": {
                "containers": [{"name": "a", "volumeMounts": [{"name": "w", "mountPath": "/data"}]}],
                "volumes": [{"name": "w", "configMap": {"name": "cm"}}],
            }
        },
        pod(
            {
                "containers": [{"name": "a", "volumeMounts": [{"name": "w", "mountPath": "/data"}]}],
                "volumes": [{"name": "w", "configMap": {"name": "cm"}}, {"name": "v", "emptyDir": {}}],
            }
        ),
    ),
    (
        "tolerations, envFrom and args are atomic",
        "Pod",
        "v1",
        pod(
            {
                "tolerations": [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}],
                "containers": [{"name": "a", "envFrom": [{"configMapRef": {"name": "x"}}], "args": ["1", "2"]}],
            }
        ),
        {
            "spec": {
                "tolerations": [{"key": "c", "operator": "Exists"}],
                "containers": [{"name": "a", "envFrom": [{"secretRef": {"name": "y"}}], "args": ["3"]}],
            }
        },
        pod(
            {
                "tolerations": [{"key": "c", "operator": "Exists"}],
                "containers": [{"name": "a", "envFrom": [{"secretRef": {"name": "y"}}], "args": ["3"]}],
            }
        ),
    ),
    (
        "finalizers merge as a set",
        "ConfigMap",
        "v1",
        {"metadata": {"finalizers": ["a", "b"]}},
        {"metadata": {"finalizers": ["c", "a"]}},
        {"metadata": {"finalizers": ["c", "a", "b"]}},
    ),
    (
        "$deleteFromPrimitiveList removes finalizers",
        "ConfigMap",
        "v1",
        {"metadata": {"finalizers": ["a", "b", "c"]}},
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "zzz"]}},
        {"metadata": {"finalizers": ["a", "c"]}},
    ),
    (
        "finalizers as kubectl apply sends them",
        "Secret",
        "v1",
        {"metadata": {"finalizers": ["a", "b"]}},
        {
            "metadata": {
                "$setElementOrder/finalizers": ["a", "c"],
                "finalizers": ["c"],
                "$deleteFromPrimitiveList/finalizers": ["b"],
            }
        },
        {"metadata": {"finalizers": ["a", "c"]}},
    ),
    (
        "ownerReferences merge by uid, delete by uid",
        "ReplicaSet",
        "apps/v1",
        {"metadata": {"ownerReferences": [{"uid": "1", "name": "x"}, {"uid": "2", "name": "y"}]}},
        {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": "1"}, {"uid": "2", "controller": True}]}},
        {"metadata": {"ownerReferences": [{"uid": "2", "name": "y", "controller": True}]}},
    ),
    (
        "$patch: replace on a map",
        "Pod",
        "v1",
        pod(
            {
                "nodeSelector": {"a": "1", "b": "2"},
                "containers": [{"name": "a", "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}}],
            }
        ),
        {
            "spec": {
                "nodeSelector": {"$patch": "replace", "c": "3"},
                "containers": [{"name": "a", "resources": {"$patch": "replace", "limits": {"cpu": "2"}}}],
            }
        },
        pod({"nodeSelector": {"c": "3"}, "containers": [{"name": "a", "resources": {"limits": {"cpu": "2"}}}]}),
    ),
    (
        "$patch: replace on a list",
        "Pod",
        "v1",
        pod({"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]}),
        {"spec": {"containers": [{"$patch": "replace"}, {"name": "x", "image": "3"}, {"name": "a", "image": "4"}]}},
        pod({"containers": [{"name": "x", "image": "3"}, {"name": "a", "image": "4"}]}),
    ),
    (
        # Upstream empties the map and keeps its key.
        "$patch: delete on a map",
        "Pod",
        "v1",
        pod({"securityContext": {"runAsUser": 1000}, "containers": []}),
        {"spec": {"securityContext": {"$patch": "delete"}}},
        pod({"securityContext": {}, "containers": []}),
    ),
    (
        "$patch: replace of the whole object",
        "ConfigMap",
        "v1",
        {"metadata": {"name": "c"}, "data": {"a": "1"}},
        {"$patch": "replace", "metadata": {"name": "c"}, "data": {"b": "2"}},
        {"metadata": {"name": "c"}, "data": {"b": "2"}},
    ),
    (
        "null deletes, maps merge",
        "ConfigMap",
        "v1",
        {"metadata": {"name": "c", "labels": {"a": "1"}}, "data": {"a": "1", "b": "2"}},
        {"metadata": {"labels": {"b": "2"}}, "data": {"a": None, "c": "3", "missing": None}},
        {"metadata": {"name": "c", "labels": {"a": "1", "b": "2"}}, "data": {"b": "2", "c": "3"}},
    ),
    (
        "endpoint subsets are atomic",
        "Endpoints",
        "v1",
        {"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]},
        {"subsets": [{"addresses": [{"ip": "10.0.0.2"}]}]},
        {"subsets": [{"addresses": [{"ip": "10.0.0.2"}]}]},
    ),
    (
        "node conditions and addresses merge by type",
        "Node",
        "v1",
        {
            "spec": {"podCIDRs": ["10.0.0.0/24"]},
            "status": {
                "conditions": [{"type": "Ready", "status": "False"}, {"type": "DiskPressure", "status": "False"}],
                "addresses": [{"type": "InternalIP", "address": "10.1.1.1"}],
            },
        },
        {
            "spec": {"podCIDRs": ["fd00::/64"]},
            "status": {
                "conditions": [{"type": "Ready", "status": "True"}],
                "addresses": [{"type": "Hostname", "address": "pi"}],
            },
        },
        {
            "spec": {"podCIDRs": ["fd00::/64", "10.0.0.0/24"]},
            "status": {
                "conditions": [{"type": "Ready", "status": "True"}, {"type": "DiskPressure", "status": "False"}],
                "addresses": [{"type": "Hostname", "address": "pi"}, {"type": "InternalIP", "address": "10.1.1.1"}],
            },
        },
    ),
    (
        "pod status conditions merge by type",
        "Pod",
        "v1",
        pod(
            {"containers": []},
            status={
                "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [{"name": "a", "ready": False}],
            },
        ),
        {
            "status": {
                "conditions": [{"type": "Ready", "status": "True"}, {"type": "Initialized", "status": "True"}],
                "containerStatuses": [{"name": "a", "ready": True}],
            }
        },
        pod(
            {"containers": []},
            status={
                "conditions": [{"type": "Ready", "status": "True"}, {"type": "Initialized", "status": "True"}],
                "containerStatuses": [{"name": "a", "ready": True}],
            },
        ),
    ),
    (
        "deployment status conditions merge by type",
        "Deployment",
        "apps/v1",
        {
            "status": {
                "conditions": [{"type": "Available", "status": "True"}, {"type": "Progressing", "status": "True"}]
            }
        },
        {"status": {"conditions": [{"type": "Progressing", "status": "False"}]}},
        {
            "status": {
                "conditions": [{"type": "Available", "status": "True"}, {"type": "Progressing", "status": "False"}]
            }
        },
    ),
    (
        "cron job template containers merge by name",
        "CronJob",
        "batch/v1",
        {
            "spec": {
                "schedule": "* * * * *",
                "jobTemplate": {
                    "spec": {
                        "template": {
                            "spec": {"containers": [{"name": "a", "image": "1", "env": [{"name": "E", "value": "1"}]}]}
                        }
                    }
                },
            }
        },
        {
            "spec": {
                "jobTemplate": {
                    "spec": {
                        "template": {"spec": {"containers": [{"name": "a", "env": [{"name": "F", "value": "2"}]}]}}
                    }
                }
            }
        },
        {
            "spec": {
                "schedule": "* * * * *",
                "jobTemplate": {
                    "spec": {
                        "template": {
                            "spec": {
                                "containers": [
                                    {
                                        "name": "a",
                                        "image": "1",
                                        "env": [{"name": "F", "value": "2"}, {"name": "E", "value": "1"}],
                                    }
                                ]
                            }
                        }
                    }
                },
            }
        },
    ),
    (
        "topology spread constraints by topologyKey, host aliases by ip",
        "DaemonSet",
        "apps/v1",
        {
            "spec": {
                "template": {
                    "spec": {
                        "topologySpreadConstraints": [{"topologyKey": "zone", "maxSkew": 1}],
                        "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["a"]}],
                    }
                }
            }
        },
        {
            "spec": {
                "template": {
                    "spec": {
                        "topologySpreadConstraints": [{"topologyKey": "zone", "maxSkew": 2}],
                        "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["b"]}],
                    }
                }
            }
        },
        {
            "spec": {
                "template": {
                    "spec": {
                        "topologySpreadConstraints": [{"topologyKey": "zone", "maxSkew": 2}],
                        "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["b"]}],
                    }
                }
            }
        },
    ),
    (
        "a new item's directives are applied, not stored",
        "Job",
        "batch/v1",
        {"spec": {"template": {"spec": {"containers": [{"name": "a"}]}}}},
        {
            "spec": {
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [{"name": "a"}, {"name": "n"}],
                        "containers": [
                            {
                                "name": "n",
                                "$setElementOrder/env": [{"name": "A"}, {"name": "B"}],
                                "env": [{"name": "A"}, {"$patch": "delete", "name": "Z"}, {"name": "B"}],
                                "resources": {"$retainKeys": ["limits"], "limits": {"cpu": None, "memory": "1Gi"}},
                            }
                        ],
                    }
                }
            }
        },
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "a"},
                            {
                                "name": "n",
                                "env": [{"name": "A"}, {"name": "B"}],
                                "resources": {"limits": {"memory": "1Gi"}},
                            },
                        ]
                    }
                }
            }
        },
    ),
    (
        "$setElementOrder alone reorders",
        "Pod",
        "v1",
        pod({"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}),
        {"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}]}},
        pod({"containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}]}),
    ),
    (
        # Upstream's "set elements order in a list with server-only items 2": an item the order does not
        # name stays next to the live item it followed.
        "server-only items keep their live neighbours",
        "Pod",
        "v1",
        pod({"containers": [{"name": "c1", "x": "a"}, {"name": "c2"}, {"name": "c9"}, {"name": "c3"}, {"name": "c4"}]}),
        {"spec": {"$setElementOrder/containers": [{"name": "c2"}, {"name": "c1"}, {"name": "c4"}, {"name": "c3"}]}},
        pod({"containers": [{"name": "c2"}, {"name": "c1", "x": "a"}, {"name": "c9"}, {"name": "c4"}, {"name": "c3"}]}),
    ),
    (
        # kubectl apply renaming the app container next to an injected sidecar: upstream resolves the
        # order against the live list as its in-place delete-then-append left it, so the sidecar leads.
        "apply renaming a container next to a sidecar",
        "Pod",
        "v1",
        pod({"containers": [{"name": "app", "image": "v1"}, {"name": "istio-proxy"}]}),
        {
            "spec": {
                "$setElementOrder/containers": [{"name": "app2"}],
                "containers": [{"name": "app2", "image": "v2"}, {"$patch": "delete", "name": "app"}],
            }
        },
        pod({"containers": [{"name": "istio-proxy"}, {"name": "app2", "image": "v2"}]}),
    ),
    (
        "unknown kind: lists replaced, nulls and directives honoured",
        "Widget",
        "example.com/v1",
        {
            "metadata": {"finalizers": ["a"]},
            "spec": {"items": [{"name": "a"}, {"name": "b"}], "opts": {"x": 1, "y": 2}, "keep": {"p": 1, "q": 2}},
        },
        {
            "metadata": {"finalizers": ["b"]},
            "spec": {
                "items": [{"name": "c"}],
                "opts": {"$patch": "replace", "z": 3},
                "y": None,
                "keep": {"$retainKeys": ["q"], "q": 3},
                "$setElementOrder/items": [{"name": "c"}],
            },
        },
        {"metadata": {"finalizers": ["b"]}, "spec": {"items": [{"name": "c"}], "opts": {"z": 3}, "keep": {"q": 3}}},
    ),
    (
        "a known kind in another group is unknown",
        "Deployment",
        "v1",
        {"spec": {"template": {"spec": {"containers": [{"name": "a"}]}}}},
        {"spec": {"template": {"spec": {"containers": [{"name": "b"}]}}}},
        {"spec": {"template": {"spec": {"containers": [{"name": "b"}]}}}},
    ),
    (
        "type change replaces",
        "ConfigMap",
        "v1",
        {"data": {"a": "1"}, "other": ["x"]},
        {"data": "gone", "other": {"k": "v"}},
        {"data": "gone", "other": {"k": "v"}},
    ),
]


@pytest.mark.parametrize(
    ("case", "kind", "api_version", "original", "patch", "result"), SMP_CASES, ids=[c[0] for c in SMP_CASES]
)
def test_strategic_merge_patch(
    case: str, kind: str, api_version: str, original: dict[str, Any], patch: dict[str, Any], result: dict[str, Any]
) -> None:
    assert smp(original, patch, kind, api_version) == result


SMP_ERRORS: list[tuple[str, dict[str, Any], Any, str]] = [
    ("patch is a list", pod({"containers": []}), [{"op": "add"}], "must be a JSON object"),
    ("patch is a string", pod({"containers": []}), "x", "must be a JSON object"),
    (
        "$patch: merge in a list",
        pod({"containers": [{"name": "a"}]}),
        {"spec": {"containers": [{"$patch": "merge"}]}},
        "$patch: merge",
    ),
    ("unknown $patch on a map", pod({"containers": []}), {"spec": {"$patch": "squash"}}, "unknown $patch"),
    (
        "unknown $patch in a list",
        pod({"containers": [{"name": "a"}]}),
        {"spec": {"containers": [{"$patch": "squash", "name": "a"}]}},
        "unknown $patch",
    ),
    (
        "delete without merge key",
        pod({"containers": [{"name": "a"}]}),
        {"spec": {"containers": [{"$patch": "delete"}]}},
        "no merge key",
    ),
    (
        "item without merge key",
        pod({"containers": [{"name": "a"}]}),
        {"spec": {"containers": [{"image": "x"}]}},
        "no merge key",
    ),
    (
        "primitives where objects merge",
        pod({"containers": [{"name": "a"}]}),
        {"spec": {"containers": ["a"]}},
        "list element types",
    ),
    (
        "objects in a primitive merge list",
        {"metadata": {"finalizers": ["a"]}},
        {"metadata": {"finalizers": [{"a": 1}]}},
        "list element types",
    ),
    ("list of lists", {"metadata": {"finalizers": ["a"]}}, {"metadata": {"finalizers": [["b"]]}}, "lists of lists"),
    ("$retainKeys not a list", pod({"containers": []}), {"spec": {"$retainKeys": "a"}}, "$retainKeys"),
    (
        "patch sets a key $retainKeys drops",
        pod({"containers": []}),
        {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": {}}}},
        "does not keep",
    ),
    (
        "$deleteFromPrimitiveList not a list",
        {"metadata": {"finalizers": ["a"]}},
        {"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}},
        "must be a list",
    ),
    (
        "$deleteFromPrimitiveList without a field",
        {"metadata": {}},
        {"metadata": {"$deleteFromPrimitiveList/": ["a"]}},
        "names no field",
    ),
    (
        "$setElementOrder not a list",
        pod({"containers": [{"name": "a"}]}),
        {"spec": {"$setElementOrder/containers": {"name": "a"}}},
        "must be a list",
    ),
    (
        "$setElementOrder disagrees with the patch",
        pod({"containers": [{"name": "a"}, {"name": "b"}]}),
        {
            "spec": {
                "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                "containers": [{"name": "b", "image": "1"}, {"name": "a", "image": "2"}],
            }
        },
        "does not match",
    ),
    (
        "$setElementOrder misses a patched item",
        pod({"containers": [{"name": "a"}]}),
        {"spec": {"$setElementOrder/containers": [{"name": "a"}], "containers": [{"name": "c"}]}},
        "does not match",
    ),
]


@pytest.mark.parametrize(("case", "original", "patch", "message"), SMP_ERRORS, ids=[c[0] for c in SMP_ERRORS])
def test_strategic_merge_patch_errors(case: str, original: dict[str, Any], patch: Any, message: str) -> None:
    error = rejected(strategic_merge_patch, original, patch, "Pod", "v1")
    assert message in str(error)


def test_deeply_nested_patches_are_rejected_not_crashed() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(5000):
        node["a"] = node = {}
    for function in (json_merge_patch, lambda t, p: strategic_merge_patch(t, p, "Pod", "v1")):
        with pytest.raises(PatchError, match="nested too deeply"):
            function({}, deep)
    with pytest.raises(PatchError, match="nested too deeply"):
        json_patch({}, [{"op": "add", "path": "/a", "value": deep}])


# --- dispatch ----------------------------------------------------------------------------------


def test_patch_types_name_the_three_formats() -> None:
    assert PATCH_TYPES == {JSON_PATCH: "json", MERGE_PATCH: "merge", STRATEGIC: "strategic"}


DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"a": "1"}},
    "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "1"}]}}},
}


@pytest.mark.parametrize(
    ("content_type", "body", "containers"),
    [
        (
            JSON_PATCH,
            b'[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"2"}]',
            [{"name": "a", "image": "2"}],
        ),
        (
            f"{JSON_PATCH}; charset=utf-8",
            b'[{"op":"add","path":"/spec/template/spec/containers/-","value":{"name":"b"}}]',
            [{"name": "a", "image": "1"}, {"name": "b"}],
        ),
        (MERGE_PATCH, b'{"spec":{"template":{"spec":{"containers":[{"name":"b"}]}}}}', [{"name": "b"}]),
        ("Application/Merge-Patch+JSON ; charset=UTF-8", b'{"spec":{"template":{"spec":{"containers":[]}}}}', []),
        (
            STRATEGIC,
            b'{"spec":{"template":{"spec":{"containers":[{"name":"b"}]}}}}',
            [{"name": "b"}, {"name": "a", "image": "1"}],
        ),
    ],
)
def test_apply_patch_dispatches_on_content_type(content_type: str, body: bytes, containers: list[Any]) -> None:
    result = applied(
        lambda t, p: apply_patch(t, p, content_type, kind="Deployment", api_version="apps/v1"), DEPLOYMENT, body
    )
    assert result["spec"]["template"]["spec"]["containers"] == containers
    assert result["metadata"] == DEPLOYMENT["metadata"]


def test_merge_and_strategic_bodies_take_the_last_of_repeated_members() -> None:
    # As upstream's JSON decoding does (it only warns); RFC 6902 makes repetition an error only for JSON Patch.
    result = apply_patch({"a": 1}, b'{"a": 2, "a": 3}', MERGE_PATCH, kind="", api_version="")
    assert result == {"a": 3}


@pytest.mark.parametrize(
    ("content_type", "body", "code", "message"),
    [
        ("application/apply-patch+yaml", b"{}", 415, "unsupported patch content type"),
        ("application/json", b"{}", 415, "unsupported patch content type"),
        ("", b"{}", 415, "unsupported patch content type"),
        (MERGE_PATCH, b'{"a":', 400, "not valid JSON"),
        (MERGE_PATCH, b"", 400, "not valid JSON"),
        (STRATEGIC, b'{"a": NaN}', 400, "not valid JSON"),
        (STRATEGIC, b'{"a": "\xff"}', 400, "not valid JSON"),
        (JSON_PATCH, b"[" * 100_000 + b"]" * 100_000, 400, "nested too deeply"),
        (JSON_PATCH, b'{"op": "add", "path": "/a", "value": 1}', 400, "JSON array of operations"),
        (MERGE_PATCH, b"[]", 400, "must be a JSON object"),
        (STRATEGIC, b"null", 400, "must be a JSON object"),
        (JSON_PATCH, b'[{"op":"test","path":"/a","value":2}]', 422, "test failed"),
    ],
)
def test_apply_patch_rejects(content_type: str, body: bytes, code: int, message: str) -> None:
    error = rejected(lambda t, p: apply_patch(t, p, content_type, kind="Pod", api_version="v1"), {"a": 1}, body)
    assert error.code == code
    assert message in str(error)
