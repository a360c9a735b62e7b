"""The Kubernetes protobuf request decoder (edgek8s/api/protobuf.py).

Two oracles: bodies the real kubectl 1.32 sent (tests/fixtures/protobuf/*.bin, captured with `-v=10`)
must decode to exactly the JSON the same kubectl prints for the same command with `--dry-run=client -o json`
(Go's encoding/json of the same struct; it writes the zero `creationTimestamp` as null, which JSON readers
treat as absent); and hand-built wire bytes of known values pin each JSON rule one at a time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from edgek8s.api.protobuf import MAGIC, ProtobufError, decode_object

FIXTURES = Path(__file__).parent.parent / "fixtures" / "protobuf"


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


@pytest.mark.parametrize("name", sorted(p.stem for p in FIXTURES.glob("*.bin")))
def test_kubectl_bodies_decode_to_what_kubectl_prints_as_json(name: str) -> None:
    expected = json.loads((FIXTURES / f"{name}.json").read_text())["dry_run_json"]
    assert decode_object((FIXTURES / f"{name}.bin").read_bytes()) == _without_nulls(expected)


# --- a tiny encoder for hand-built bodies ----------------------------------------------------------------


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def num(field: int, n: int) -> bytes:
    return varint(field << 3) + varint(n)


def ld(field: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return varint(field << 3 | 2) + varint(len(data)) + data


def envelope(api_version: str, kind: str, raw: bytes, encoding: str = "") -> bytes:
    return MAGIC + ld(1, ld(1, api_version) + ld(2, kind)) + ld(2, raw) + ld(3, encoding) + ld(4, "")


def meta(name: str, **extra: bytes) -> bytes:
    # As gogo writes it: every non-pointer field, even empty (generation 0, zero creationTimestamp).
    return ld(1, ld(1, name) + ld(2, "") + ld(3, "") + num(7, 0) + ld(8, b"") + b"".join(extra.values()))


def test_pointer_fields_keep_zero_and_omitempty_values_drop_it() -> None:
    spec = num(1, 0) + ld(4, b"") + num(5, 0) + num(7, 0)  # replicas=0 (pointer), minReadySeconds=0, paused=false
    obj = decode_object(envelope("apps/v1", "Deployment", meta("d") + ld(2, spec)))
    assert obj == {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                   "spec": {"replicas": 0, "strategy": {}}}


def test_non_omitempty_zero_is_kept_and_negative_int32_decodes() -> None:
    port = ld(1, "") + num(2, 0) + num(3, 0) + ld(4, "TCP")  # containerPort has no omitempty upstream
    c = ld(1, "c") + ld(2, "img") + ld(6, port) + ld(8, b"")
    pod_spec = ld(2, c) + num(4, -5)  # terminationGracePeriodSeconds is a *int64: -5 as a 10-byte varint
    obj = decode_object(envelope("v1", "Pod", meta("p") + ld(2, pod_spec)))
    assert obj["spec"] == {
        "containers": [{"name": "c", "image": "img", "ports": [{"containerPort": 0, "protocol": "TCP"}],
                        "resources": {}}],
        "terminationGracePeriodSeconds": -5,
    }


def test_quantities_maps_int_or_string_and_inline_volume_source() -> None:
    limits = ld(1, ld(1, "cpu") + ld(2, ld(1, "250m"))) + ld(1, ld(1, "memory") + ld(2, ld(1, "64Mi")))
    probe_port = ld(2, num(1, 1) + num(2, 0) + ld(3, "http"))  # IntOrString string form
    probe = ld(1, ld(2, ld(1, "/healthz") + probe_port))  # ProbeHandler (inline) -> httpGet
    c = ld(1, "c") + ld(2, "img") + ld(8, limits) + ld(10, probe)
    volume = ld(1, "scratch") + ld(2, ld(2, ld(1, "Memory")))  # VolumeSource (inline) -> emptyDir
    pod_spec = ld(1, volume) + ld(2, c) + num(21, 0)  # automountServiceAccountToken=false (a *bool)
    obj = decode_object(envelope("v1", "Pod", meta("p") + ld(2, pod_spec)))
    assert obj["spec"] == {
        "volumes": [{"name": "scratch", "emptyDir": {"medium": "Memory"}}],
        "containers": [{"name": "c", "image": "img", "resources": {"limits": {"cpu": "250m", "memory": "64Mi"}},
                        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}}}],
        "automountServiceAccountToken": False,
    }
    service_port = ld(1, "web") + num(3, 80) + ld(4, num(1, 0) + num(2, 8080))  # IntOrString int form
    svc = decode_object(envelope("v1", "Service", meta("s") + ld(2, ld(1, service_port))))
    assert svc["spec"] == {"ports": [{"name": "web", "port": 80, "targetPort": 8080}]}


def test_times_micro_times_bytes_and_labels() -> None:
    renew = ld(4, num(1, 1_700_000_000) + num(2, 123_456_789))
    acquire = ld(3, num(1, 1_700_000_000))
    lease = decode_object(envelope("coordination.k8s.io/v1", "Lease", meta("l") + ld(2, ld(1, "me") + acquire + renew)))
    assert lease["spec"] == {"holderIdentity": "me", "acquireTime": "2023-11-14T22:13:20.000000Z",
                             "renewTime": "2023-11-14T22:13:20.123456Z"}
    labels = ld(11, ld(1, "app") + ld(2, "x"))
    created = ld(8, num(1, 1_700_000_000) + num(2, 999))
    secret = decode_object(envelope("v1", "Secret", meta("s", labels=labels, created=created)
                                    + ld(2, ld(1, "k") + ld(2, b"\x00\xffhi")) + ld(3, "Opaque")))
    assert secret["metadata"] == {"name": "s", "labels": {"app": "x"}, "creationTimestamp": "2023-11-14T22:13:20Z"}
    assert secret["data"] == {"k": "AP9oaQ=="} and secret["type"] == "Opaque"


def test_repeated_scalars_packed_or_not_and_unknown_fields_skipped() -> None:
    packed = ld(4, varint(1) + varint(2))
    unpacked = num(4, 3)
    unknown = ld(999, "from a newer kubectl") + num(998, 7)
    spec = ld(14, packed + unpacked + unknown) + ld(2, ld(1, "c") + ld(8, b""))  # securityContext.supplementalGroups
    obj = decode_object(envelope("v1", "Pod", meta("p") + ld(2, spec)))
    assert obj["spec"]["securityContext"] == {"supplementalGroups": [1, 2, 3]}


def test_delete_options() -> None:
    body = envelope("v1", "DeleteOptions", num(1, 0) + ld(2, ld(1, "u1")) + ld(4, "Foreground"))
    assert decode_object(body) == {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                                   "preconditions": {"uid": "u1"}, "propagationPolicy": "Foreground"}
    negative = envelope("v1", "DeleteOptions", num(1, -30))
    assert decode_object(negative)["gracePeriodSeconds"] == -30


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"kind": "Pod"}', "does not start with"),
        (MAGIC + b"\x0a", "truncated varint"),
        (MAGIC + b"\x0a\x7f\x00", "longer than its message"),
        (MAGIC + b"\x0b", "unsupported wire type 3"),
        (MAGIC + b"\x00", "field number 0"),
        (MAGIC + b"\x08" + b"\xff" * 11, "longer than 10 bytes"),
        (envelope("v1", "Pod", b"", encoding="gzip"), "unsupported contentEncoding"),
        (envelope("storage.k8s.io/v1", "StorageClass", b""), "no protobuf message is known for kind 'StorageClass'"),
        (envelope("v1", "Secret", meta("s") + ld(3, b"\xff\xfe")), "not valid UTF-8"),
        (envelope("v1", "Pod", num(1, 5)), "expected an embedded ObjectMeta message"),
        (envelope("v1", "Pod", ld(2, ld(2, ld(1, b"c") + ld(2, b"i") + num(8, 1)))), "expected an embedded"),
        (envelope("v1", "Pod", ld(1, ld(1, "p") + ld(8, b"\x09\x00"))), "truncated fixed64"),
    ],
)
def test_malformed_bodies_are_rejected_with_a_reason(body: bytes, message: str) -> None:
    with pytest.raises(ProtobufError, match=message):
        decode_object(body)


def test_managed_fields_carry_embedded_json() -> None:
    entry = ld(1, "kubectl") + ld(2, "Update") + ld(3, "v1") + ld(6, "FieldsV1") + ld(7, ld(1, '{"f:data":{}}'))
    obj = decode_object(envelope("v1", "ConfigMap", meta("m", mf=ld(17, entry))))
    assert obj["metadata"]["managedFields"] == [
        {"manager": "kubectl", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:data": {}}}
    ]
    with pytest.raises(ProtobufError, match="not JSON"):
        decode_object(envelope("v1", "ConfigMap", meta("m", mf=ld(17, ld(7, ld(1, b"\x01\x02"))))))
