"""Indexed Jobs (``completionMode: Indexed``): completion indexes of pods, and their interval text. Pure.

Upstream's ``pkg/controller/job/indexed_job_utils.go`` (Kubernetes 1.32, PodIndexLabel GA):

- Each pod of an Indexed Job carries its index ``0 <= i < completions`` in the annotation and the label
  ``batch.kubernetes.io/job-completion-index``; its name starts ``<job>-<i>-``; its hostname is
  ``<job>-<i>`` unless the template sets one; every container and init container gets the variable
  ``JOB_COMPLETION_INDEX`` from the downward API (``fieldRef metadata.labels['...']``, as 1.32 does;
  the kubelet resolves it from the pod it runs).
- An index is complete once one of its pods succeeded; ``status.completedIndexes`` lists the complete
  indexes as ascending intervals (``"0-2,5,7-8"``) and ``status.succeeded`` is their number.
- Only one pod runs per index: pods with a missing or out-of-range index, an index already complete,
  or a second pod of an index are deleted; missing pods are created for the lowest free indexes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from edgek8s.controllers import pods as p

INDEX_KEY = "batch.kubernetes.io/job-completion-index"
INDEX_ENV = "JOB_COMPLETION_INDEX"


def is_indexed(job: Mapping[str, Any]) -> bool:
    spec = p.spec(job)
    return spec.get("completionMode") == "Indexed" and isinstance(spec.get("completions"), int)


def completion_index(pod: Mapping[str, Any]) -> int | None:
    """The pod's index from its annotation (upstream reads the annotation); None when absent or bad."""
    text = (p.meta(pod).get("annotations") or {}).get(INDEX_KEY)
    if not isinstance(text, str) or not text.isdigit():
        return None
    return int(text)


def parse_intervals(text: object) -> set[int]:
    """``"0-2,5"`` -> {0, 1, 2, 5}; anything malformed is skipped (status is the controller's own)."""
    found: set[int] = set()
    if not isinstance(text, str):
        return found
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        if first.isdigit() and (not last or last.isdigit()):
            found.update(range(int(first), int(last or first) + 1))
    return found


def format_intervals(indexes: Iterable[int]) -> str:
    """{0, 1, 2, 5} -> ``"0-2,5"`` (upstream's ``orderedIntervals.String``)."""
    parts: list[str] = []
    ordered = sorted(set(indexes))
    start = 0
    while start < len(ordered):
        end = start
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
            end += 1
        first, last = ordered[start], ordered[end]
        parts.append(str(first) if first == last else f"{first}-{last}")
        start = end + 1
    return ",".join(parts)


def surplus(active: Sequence[Mapping[str, Any]], completions: int,
            completed: set[int]) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """(pods to keep, pods to delete): one pod per incomplete in-range index, the oldest."""
    keep: dict[int, Mapping[str, Any]] = {}
    drop: list[Mapping[str, Any]] = []
    for pod in p.by_creation(active):
        index = completion_index(pod)
        if index is None or index >= completions or index in completed or index in keep:
            drop.append(pod)
        else:
            keep[index] = pod
    return list(keep.values()), drop


def free_indexes(completions: int, taken: set[int], count: int) -> list[int]:
    """The lowest ``count`` indexes below ``completions`` not in ``taken``."""
    result: list[int] = []
    for index in range(completions):
        if len(result) >= count:
            break
        if index not in taken:
            result.append(index)
    return result


def add_index(pod: dict[str, Any], job_name: str, index: int) -> dict[str, Any]:
    """Make a pod body built from the Job's template the pod of ``index`` (in place; returns it)."""
    meta: dict[str, Any] = pod["metadata"]
    meta["generateName"] = f"{job_name}-{index}-"
    meta["annotations"] = {**(meta.get("annotations") or {}), INDEX_KEY: str(index)}
    meta["labels"] = {**(meta.get("labels") or {}), INDEX_KEY: str(index)}
    spec: dict[str, Any] = pod["spec"]
    if not spec.get("hostname"):
        spec["hostname"] = f"{job_name}-{index}"
    ref = {"fieldRef": {"fieldPath": f"metadata.labels['{INDEX_KEY}']"}}
    for field in ("initContainers", "containers"):
        for container in spec.get(field) or ():
            env = list(container.get("env") or ())
            if not any(isinstance(var, Mapping) and var.get("name") == INDEX_ENV for var in env):
                env.append({"name": INDEX_ENV, "valueFrom": ref})
            container["env"] = env
    return pod
