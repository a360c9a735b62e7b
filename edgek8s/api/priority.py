"""Priority admission: PriorityClasses resolved into pods at create, one global default at most.

Upstream's ``plugin/pkg/admission/priority`` and ``pkg/apis/scheduling/validation``:

- A Pod created with ``spec.priorityClassName`` gets ``spec.priority`` (and ``preemptionPolicy``) from
  that class; a name no class has is refused (403 ``no PriorityClass with name X was found``). Without
  a name, the ``globalDefault`` class applies (its name is written into the pod; with several, the
  lowest value wins, as upstream), else priority 0. A pod that states a priority or policy other than
  the computed one is refused, so ``spec.priority`` always reflects a class.
- ``system-node-critical`` (2000001000) and ``system-cluster-critical`` (2000000000) resolve even
  when no such object was created (upstream's apiserver creates them at start; edgek8s keeps them
  built in instead of writing them into every new cluster).
- A second ``globalDefault`` class is refused (403). Field rules (values above 1,000,000,000 reserved
  for ``system-`` names, ``value`` and ``preemptionPolicy`` fixed on update) are the registry's
  (``registry/scheduling.py``).

Reads come from this master's applied state (as upstream's admission reads its informer cache), so two
concurrent ``globalDefault`` creates can both pass, as upstream. Runs on creates that reach the store
(a dry-run pod create is answered without its priority resolved).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgek8s.model import errors
from edgek8s.model.resources import ResourceId, resource_id
from edgek8s.store.raftstore import RaftStore

PODS = resource_id("", "pods")
PRIORITY_CLASSES = resource_id("scheduling.k8s.io", "priorityclasses")
SYSTEM_CLASSES: Mapping[str, int] = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}
PREEMPT = "PreemptLowerPriority"


def _classes(store: RaftStore) -> list[dict[str, Any]]:
    objects, _rv = store.state.list(PRIORITY_CLASSES, None)
    return [o.decode() for o in objects]


def _forbidden(resource: str, name: str, message: str) -> errors.Forbidden:
    return errors.Forbidden(f'{resource} "{name}" is forbidden: {message}')


def admit_pod(store: RaftStore, pod: dict[str, Any]) -> None:
    """Resolve the pod's priority in place, or refuse it."""
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return
    name = str((pod.get("metadata") or {}).get("name") or "")
    class_name = spec.get("priorityClassName") or ""
    policy: str = PREEMPT
    if class_name:
        stored, _rv = store.state.get(PRIORITY_CLASSES, "", str(class_name))
        found = None if stored is None else stored.decode()
        if found is not None:
            value, policy = int(found.get("value") or 0), str(found.get("preemptionPolicy") or PREEMPT)
        elif class_name in SYSTEM_CLASSES:
            value = SYSTEM_CLASSES[class_name]
        else:
            raise _forbidden("pods", name, f"no PriorityClass with name {class_name} was found")
    else:
        defaults = sorted((c for c in _classes(store) if c.get("globalDefault")),
                          key=lambda c: int(c.get("value") or 0))
        value = 0
        if defaults:
            spec["priorityClassName"] = defaults[0]["metadata"]["name"]
            value, policy = int(defaults[0].get("value") or 0), str(defaults[0].get("preemptionPolicy") or PREEMPT)
    given = spec.get("priority")
    if given is not None and given != value:
        raise _forbidden("pods", name, f"the integer value of priority ({given}) must not be provided in pod spec; "
                                       f"priority admission controller computed {value} from the given "
                                       "PriorityClass name")
    given_policy = spec.get("preemptionPolicy")
    if given_policy is not None and given_policy != policy:
        raise _forbidden("pods", name, f"the string value of PreemptionPolicy ({given_policy}) must not be provided in "
                                       f"pod spec; priority admission controller computed {policy} from the given "
                                       "PriorityClass name")
    spec["priority"] = value
    spec["preemptionPolicy"] = policy


def admit(store: RaftStore, rid: ResourceId, obj: dict[str, Any], *, create: bool) -> None:
    """The admission step of every create, update and patch that reaches the store. Pods only on
    create: upstream's plugin only keeps the priority on update, and edgek8s's writers never drop it."""
    if rid == PODS and create:
        admit_pod(store, obj)
    elif rid == PRIORITY_CLASSES:
        admit_priority_class(store, obj)


def admit_priority_class(store: RaftStore, obj: dict[str, Any]) -> None:
    """Refuse a second globalDefault class (create, or an update turning it on)."""
    if not obj.get("globalDefault"):
        return
    name = str((obj.get("metadata") or {}).get("name") or "")
    for other in _classes(store):
        if other.get("globalDefault") and other["metadata"]["name"] != name:
            raise _forbidden("priorityclasses.scheduling.k8s.io", name,
                             f"PriorityClass {other['metadata']['name']} is already marked as default. "
                             "Only one default can exist")
