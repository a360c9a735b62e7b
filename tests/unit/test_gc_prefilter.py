"""may_be_in_graph: the garbage collector's test on an object's stored JSON never rejects what it keeps."""

from __future__ import annotations

import itertools
import random
from typing import Any

from edgek8s.client.informer import metadata_only
from edgek8s.controllers.garbagecollector import in_graph, may_be_in_graph
from edgek8s.model import jsoncodec

_VALUES: dict[str, list[Any]] = {
    "ownerReferences": [None, [], [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "u"}]],
    "finalizers": [None, [], ["orphan"], ["example.com/f"]],
    "deletionTimestamp": [None, "", "2026-11-29T10:00:00Z"],
}
_DECOYS: list[dict[str, Any]] = [
    {},
    {"spec": {"finalizers": ["kubernetes"]}},  # a Namespace's: not the metadata's
    {"data": {"note": 'say "finalizers" or "ownerReferences"', "ownerReferences": "x"}},
    {"metadata": {"labels": {"finalizers": "deletionTimestamp"}, "annotations": {"a": "ownerReferences"}}},
]


def build(values: dict[str, Any], decoy: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "n", "namespace": "default", "uid": "u", "resourceVersion": "5",
                            **decoy.get("metadata", {})}
    for key, value in values.items():
        if value is not None:
            meta[key] = value
    return {"apiVersion": "v1", "kind": "ConfigMap", **{k: v for k, v in decoy.items() if k != "metadata"},
            "metadata": meta}


def test_every_object_the_collector_keeps_passes_and_plain_objects_fail() -> None:
    kept = 0
    for combo in itertools.product(*_VALUES.values()):
        values = dict(zip(_VALUES, combo, strict=True))
        for decoy in _DECOYS:
            obj = build(values, decoy)
            encoded = jsoncodec.dumps(obj)
            if in_graph(metadata_only(obj)):
                kept += 1
                assert may_be_in_graph(encoded), obj
            if all(v is None for v in values.values()) and not decoy:
                assert not may_be_in_graph(encoded)  # what the leader sees for most creates
    assert kept > 50


def test_random_key_orders_and_shapes() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        values = {key: rng.choice(options) for key, options in _VALUES.items()}
        obj = build(values, rng.choice(_DECOYS))
        meta = obj["metadata"]
        keys = list(meta)
        rng.shuffle(keys)
        obj["metadata"] = {k: meta[k] for k in keys}
        assert may_be_in_graph(jsoncodec.dumps(obj)) or not in_graph(metadata_only(obj))
