"""Unknown- and duplicate-field detection, as kube-apiserver's strict decoder reports them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from edgek8s.model import jsoncodec
from edgek8s.registry import schema

ROOT = Path(__file__).resolve().parents[2]


def _pod(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"containers": [{"name": "c", "image": "nginx"}]}
    base.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": base}


def _deployment(pod_spec: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {
            "selector": {"matchLabels": {"app": "d"}},
            "template": {"metadata": {"labels": {"app": "d"}}, "spec": pod_spec},
            **spec,
        },
    }


CONTAINER = {"name": "c", "image": "nginx"}

UNKNOWN_CASES: list[tuple[str, str, str, dict[str, Any], list[str]]] = [
    ("clean pod", "Pod", "v1", _pod(), []),
    ("top level", "Pod", "v1", {**_pod(), "spex": {}}, ["spex"]),
    ("metadata", "Pod", "v1", {"metadata": {"name": "p", "nmae": "q"}}, ["metadata.nmae"]),
    ("spec", "Pod", "v1", _pod(containerz=[]), ["spec.containerz"]),
    ("field names are case-sensitive", "Pod", "v1", {"Metadata": {}, "spec": {"Containers": []}},
     ["Metadata", "spec.Containers"]),
    ("second container", "Pod", "v1", _pod(containers=[CONTAINER, {**CONTAINER, "imagex": "x"}]),
     ["spec.containers[1].imagex"]),
    ("env entry", "Pod", "v1",
     _pod(containers=[{**CONTAINER, "env": [{"name": "A", "value": "1"}, {"name": "B", "valu": "2"}]}]),
     ["spec.containers[0].env[1].valu"]),
    ("env valueFrom", "Pod", "v1",
     _pod(containers=[{**CONTAINER, "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPth": "x"}}}]}]),
     ["spec.containers[0].env[0].valueFrom.fieldRef.fieldPth"]),
    ("container port", "Pod", "v1",
     _pod(containers=[{**CONTAINER, "ports": [{"containerPort": 80, "protocl": "TCP"}]}]),
     ["spec.containers[0].ports[0].protocl"]),
    ("probe handler", "Pod", "v1",
     _pod(containers=[{**CONTAINER, "livenessProbe": {"httpGet": {"port": 80, "paht": "/"}}}]),
     ["spec.containers[0].livenessProbe.httpGet.paht"]),
    ("init container", "Pod", "v1", _pod(initContainers=[{**CONTAINER, "cmd": ["sh"]}]),
     ["spec.initContainers[0].cmd"]),
    ("volume source", "Pod", "v1", _pod(volumes=[{"name": "v", "configMap": {"nam": "cm"}}]),
     ["spec.volumes[0].configMap.nam"]),
    ("volume itself", "Pod", "v1", _pod(volumes=[{"name": "v", "emptydir": {}}]), ["spec.volumes[0].emptydir"]),
    ("pod status", "Pod", "v1",
     {"status": {"phase": "Running", "phaze": "x", "containerStatuses": [{"name": "c", "redy": True}]}},
     ["status.phaze", "status.containerStatuses[0].redy"]),
    ("deployment template", "Deployment", "apps/v1",
     _deployment({"containers": [{**CONTAINER, "imagex": "x"}]}),
     ["spec.template.spec.containers[0].imagex"]),
    ("deployment strategy", "Deployment", "apps/v1",
     _deployment({"containers": [CONTAINER]}, strategy={"rollingUpdate": {"maxSurge": "25%", "maxSurg": 1}}),
     ["spec.strategy.rollingUpdate.maxSurg"]),
    ("deployment status", "Deployment", "apps/v1", {"status": {"replicas": 1, "replicaz": 1}}, ["status.replicaz"]),
    ("cronjob nested template", "CronJob", "batch/v1",
     {"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
         "containers": [CONTAINER], "restartPolicy": "Never", "restartPolicyy": "x"}}}}}},
     ["spec.jobTemplate.spec.template.spec.restartPolicyy"]),
    ("several, in body order", "Pod", "v1",
     {"zzz": 1, "metadata": {"name": "p", "aaa": 1}, "spec": {"containers": [{**CONTAINER, "x": 1}]}, "bbb": 1},
     ["zzz", "metadata.aaa", "spec.containers[0].x", "bbb"]),
    ("an unknown field's value is not read", "Pod", "v1", {"spex": {"containers": [{"imagex": 1}]}}, ["spex"]),
    ("an unknown field set to null still counts", "Pod", "v1", {"spex": None}, ["spex"]),
    ("nulls are skipped", "Pod", "v1", {"metadata": None, "spec": {"containers": None, "volumes": [None]}}, []),
    ("wrong types are validation's business", "Pod", "v1",
     {"metadata": "x", "spec": {"containers": "nginx", "volumes": [1, "v"]}}, []),
    ("service", "Service", "v1", {"spec": {"ports": [{"port": 80, "targetPort": "http", "nodeport": 1}]}},
     ["spec.ports[0].nodeport"]),
    ("event", "Event", "v1", {"involvedObject": {"kind": "Pod", "nme": "p"}, "reason": "x", "reasn": "y"},
     ["involvedObject.nme", "reasn"]),
    ("lease", "Lease", "coordination.k8s.io/v1", {"spec": {"holderIdentity": "a", "renewTime": "t", "ttl": 5}},
     ["spec.ttl"]),
    ("endpoint slice", "EndpointSlice", "discovery.k8s.io/v1",
     {"addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": True, "up": 1}}]},
     ["endpoints[0].conditions.up"]),
    ("scale", "Scale", "autoscaling/v1", {"spec": {"replicas": 2, "replica": 3}}, ["spec.replica"]),
]

FREE_FORM_CASES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("labels and annotations", "Pod", "v1",
     {"metadata": {"labels": {"anything/goes": "x"}, "annotations": {"kubectl.kubernetes.io/x": "{}"}}}),
    ("configmap data keys", "ConfigMap", "v1", {"data": {"any-key": "v", "spec": "v"}, "binaryData": {"k": "AA=="}}),
    ("secret data keys", "Secret", "v1", {"data": {"x": "AA=="}, "stringData": {"y": "z"}, "type": "Opaque"}),
    ("managedFields fieldsV1 is free-form", "Pod", "v1",
     {"metadata": {"managedFields": [{"manager": "kubectl", "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}}}]}}),
    ("int-or-string values", "Deployment", "apps/v1",
     {"spec": {"strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}}}}),
    ("resource quantities", "Pod", "v1",
     _pod(containers=[{**CONTAINER, "resources": {"limits": {"cpu": "1", "example.com/gpu": 1}}}])),
    ("selectors and node selectors", "Service", "v1", {"spec": {"selector": {"app": "x"}}}),
    ("node status maps", "Node", "v1", {"status": {"capacity": {"cpu": "4"}, "allocatable": {"pods": "110"}}}),
]


@pytest.mark.parametrize(("kind", "api_version", "obj", "expected"),
                         [case[1:] for case in UNKNOWN_CASES], ids=[case[0] for case in UNKNOWN_CASES])
def test_unknown_fields(kind: str, api_version: str, obj: dict[str, Any], expected: list[str]) -> None:
    assert schema.unknown_fields(kind, api_version, obj) == expected


@pytest.mark.parametrize(("kind", "api_version", "obj"),
                         [case[1:] for case in FREE_FORM_CASES], ids=[case[0] for case in FREE_FORM_CASES])
def test_free_form_values_are_not_checked(kind: str, api_version: str, obj: dict[str, Any]) -> None:
    assert schema.unknown_fields(kind, api_version, obj) == []


@pytest.mark.parametrize(
    ("kind", "api_version", "known"),
    [
        ("Pod", "v1", True), ("Namespace", "v1", True), ("Node", "v1", True), ("Service", "v1", True),
        ("Endpoints", "v1", True), ("ConfigMap", "v1", True), ("Secret", "v1", True), ("Event", "v1", True),
        ("Deployment", "apps/v1", True), ("ReplicaSet", "apps/v1", True), ("DaemonSet", "apps/v1", True),
        ("Lease", "coordination.k8s.io/v1", True), ("Job", "batch/v1", True), ("CronJob", "batch/v1", True),
        ("EndpointSlice", "discovery.k8s.io/v1", True), ("Scale", "autoscaling/v1", True),
        ("Deployment", "v1", False), ("Deployment", "extensions/v1beta1", False), ("Pod", "apps/v1", False),
        ("Event", "events.k8s.io/v1", False), ("pod", "v1", False), ("StatefulSet", "apps/v1", False),
        ("Widget", "example.com/v1", False), ("", "", False),
    ],
)
def test_known_kind(kind: str, api_version: str, known: bool) -> None:
    assert schema.known_kind(kind, api_version) is known


def test_unknown_kind_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        schema.unknown_fields("Widget", "example.com/v1", {})


def test_no_more_than_100_paths() -> None:
    obj = {f"field{i}": i for i in range(150)}
    paths = schema.unknown_fields("ConfigMap", "v1", obj)
    assert paths == [f"field{i}" for i in range(100)]


def test_strict_field_errors_reports_unknown_and_duplicate_in_body_order() -> None:
    body = (
        '{"apiVersion":"v1","kind":"Pod",'
        '"metadata":{"name":"a","name":"b","labels":{"x":"1","y":"2","x":"3"}},'
        '"spec":{"containers":[{"name":"c","image":"i","imagex":1,"image":"j"}]},"spex":1}'
    )
    obj, messages = schema.strict_field_errors("Pod", "v1", body)
    assert messages == [
        'duplicate field "metadata.name"',
        'duplicate field "metadata.labels.x"',
        'unknown field "spec.containers[0].imagex"',
        'duplicate field "spec.containers[0].image"',
        'unknown field "spex"',
    ]
    # The object is json.loads': the last of a duplicated key wins.
    assert obj["metadata"] == {"name": "b", "labels": {"x": "3", "y": "2"}}
    assert obj["spec"]["containers"][0]["image"] == "j"
    assert type(obj["metadata"]) is dict and type(obj["metadata"]["labels"]) is dict


def test_strict_field_errors_clean_body_and_bytes() -> None:
    obj, messages = schema.strict_field_errors("ConfigMap", "v1", b'{"data":{"a":"b"}}')
    assert (obj, messages) == ({"data": {"a": "b"}}, [])


def test_strict_field_errors_quotes_like_go() -> None:
    _, messages = schema.strict_field_errors("ConfigMap", "v1", '{"ba\\"d":1, "caf\\u00e9":2, "t\\tab":3}')
    assert messages == ['unknown field "ba\\"d"', 'unknown field "café"', 'unknown field "t\\tab"']


def test_a_repeated_unknown_field_is_reported_once() -> None:
    # Upstream checks duplicates only among known fields, and reports each message once.
    _, messages = schema.strict_field_errors("Pod", "v1", '{"spex":1,"spex":2}')
    assert messages == ['unknown field "spex"']


@pytest.mark.parametrize("body", [
    b'{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","name":"b"},"spex":1}',
    b'{"metadata" :{"labels":{"x":"1","x" :"2"}}}',  # whitespace before the colon
    b'{"metadata":{"name":"a"},\n "metadata"\t:\r{"name":"b"}}',  # the dropped subtree held keys too
    b'{"metadata":{"annotations":{"a":"\\":\\":"}},"spec":{"containers":[{"name":"c","imagex":1}]}}',
    b'{"metadata":{"name":"x","annotations":{"k":"v\\":"}},"metadata":{"name":"y"}}',
    b'{"spec":{"containers":[{"name":"c"},{"name":"d","name":"e"}],"volumes":[]},"status":{}}',
    b'[{"a":1},{"a":2}]',
    b'{}',
])
def test_strict_field_errors_with_the_parsed_body_answers_as_a_second_parse(body: bytes) -> None:
    # The API passes its own (orjson) parse: duplicates must still be found, whatever the spacing or
    # the string values that look like keys, and clean bodies must give the same messages.
    parsed = jsoncodec.loads(body)
    assert schema.strict_field_errors("Pod", "v1", body, parsed) == schema.strict_field_errors("Pod", "v1", body)


def test_strict_field_errors_reuses_a_clean_parsed_body() -> None:
    body = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"k":"v"},"x":1}'
    parsed = jsoncodec.loads(body)
    obj, messages = schema.strict_field_errors("ConfigMap", "v1", body, parsed)
    assert obj is parsed and messages == ['unknown field "x"']


def test_strict_field_errors_rejects_non_json() -> None:
    with pytest.raises(ValueError):
        schema.strict_field_errors("Pod", "v1", "{not json")


def test_synthetic_schema_free_form_lists_maps_and_recursion(tmp_path: Path) -> None:
    path = tmp_path / "schema.json"
    path.write_text(json.dumps({
        "kinds": {"example.com/v1/Widget": "Widget"},
        "types": {
            "Widget": {"raw": "free-form", "parts": ["Part"], "byName": {"str": "Part"}, "tags": ["string"]},
            "Part": {"name": "string", "child": "Part", "port": "int-or-string"},
        },
    }))
    tables = schema._compile(path)
    widget = tables["example.com/v1/Widget"]
    obj = {
        "raw": {"apiVersion": "x/v1", "kind": "Anything", "spec": {"whatever": [1, {"deep": True}]}},
        "parts": [{"name": "a", "child": {"child": {"nme": "deep"}}}],
        "byName": {"k": {"port": "http", "prt": 1}},
        "tags": ["a", "b"],
    }
    out: list[str] = []
    schema._walk(widget, obj, "", out, None)
    assert out == ["parts[0].child.child.nme", "byName.k.prt"]


def test_five_container_pod_is_checked_well_under_a_millisecond() -> None:
    container = {
        "name": "c", "image": "nginx:1.25", "ports": [{"containerPort": 80, "protocol": "TCP"}],
        "env": [{"name": "A", "value": "b"}, {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "resources": {"limits": {"cpu": "1"}}, "livenessProbe": {"httpGet": {"path": "/", "port": 80}},
        "volumeMounts": [{"name": "v", "mountPath": "/v"}],
    }
    pod = _pod(containers=[dict(container, name=f"c{i}") for i in range(5)],
               volumes=[{"name": "v", "configMap": {"name": "cm"}}])
    schema.unknown_fields("Pod", "v1", pod)  # loads the table
    runs = 200
    start = time.perf_counter()
    for _ in range(runs):
        assert schema.unknown_fields("Pod", "v1", pod) == []
    assert (time.perf_counter() - start) / runs < 0.001


def test_loading_the_table_is_small() -> None:
    """Measured in a fresh interpreter: what the compiled table keeps, and the peak while loading."""
    code = (
        "import tracemalloc, gc\n"
        "import edgek8s.registry.schema as s\n"
        "tracemalloc.start()\n"
        "s.known_kind('Pod', 'v1'); gc.collect()\n"
        "print(*tracemalloc.get_traced_memory())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    held, peak = map(int, result.stdout.split())
    assert held < 512 * 1024
    assert peak < 1024 * 1024


def test_schema_file_is_small_and_lists_the_served_kinds() -> None:
    assert schema.SCHEMA_PATH.stat().st_size < 1024 * 1024
    kinds = json.loads(schema.SCHEMA_PATH.read_text())["kinds"]
    assert kinds["v1/Event"] == "CoreV1Event"
    assert len(kinds) == 28


def test_schema_file_matches_its_generator() -> None:
    """Regenerating with the client version that made the file gives the same bytes."""
    kubernetes = pytest.importorskip("kubernetes")
    committed = schema.SCHEMA_PATH.read_text()
    if f"kubernetes=={kubernetes.__version__}" not in committed.splitlines()[1]:
        pytest.skip(f"schema.json was generated with another kubernetes client than {kubernetes.__version__}")
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import gen_schema
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    assert gen_schema.render(gen_schema.generate()) == committed
