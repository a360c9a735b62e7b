"""What a pure sync function asks for: writes and events, in the order they must happen.

The sync functions of the DaemonSet, Job, CronJob, node lifecycle, Endpoints and Event TTL controllers
are pure: ``(object, cached related objects, now) -> Plan``. A runner carries out a plan's actions
in order and stops at the first failure (the next sync recomputes from fresh state), so an action may
rely on every earlier one having succeeded: e.g. a Job's status records a finished pod before the
pod's tracking finalizer is removed.

Invariants: actions carry plain JSON bodies built fresh by the sync function (never a cached object
mutated in place); an ``Update`` carries the resourceVersion it was computed from, so a stale cache
gives a Conflict instead of a lost write; a ``Delete`` carries the uid it means.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from edgek8s.model.resources import ResourceId, resource_id

PODS = resource_id("", "pods")
NODES = resource_id("", "nodes")
EVENTS = resource_id("", "events")
SERVICES = resource_id("", "services")
ENDPOINTS = resource_id("", "endpoints")
ENDPOINT_SLICES = resource_id("discovery.k8s.io", "endpointslices")
LEASES = resource_id("coordination.k8s.io", "leases")
JOBS = resource_id("batch", "jobs")
CRON_JOBS = resource_id("batch", "cronjobs")
DAEMON_SETS = resource_id("apps", "daemonsets")
CONTROLLER_REVISIONS = resource_id("apps", "controllerrevisions")


@dataclass(frozen=True, slots=True, kw_only=True)
class Create:
    resource: ResourceId
    namespace: str
    body: dict[str, Any]
    exists_ok: bool = False  # a deterministic name already taken means an earlier sync created it


@dataclass(frozen=True, slots=True, kw_only=True)
class Update:
    """A PUT of ``body`` (its metadata.resourceVersion is the precondition); ``status`` for /status."""

    resource: ResourceId
    body: dict[str, Any]
    status: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Delete:
    resource: ResourceId
    namespace: str
    name: str
    uid: str = ""
    resource_version: str = ""  # set when a newer version must survive (an Event bumped meanwhile)
    propagation: Literal["Background", "Foreground", "Orphan", ""] = ""
    grace_period: int | None = None  # pods: None = the pod's own grace; 0 = force (its kubelet is gone)


@dataclass(frozen=True, slots=True, kw_only=True)
class Emit:
    """An Event about ``involved`` (the object as cached) for ``kubectl describe``."""

    involved: dict[str, Any]
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


Action = Create | Update | Delete | Emit


@dataclass(slots=True, kw_only=True)
class Plan:
    """The actions of one sync, and when to look again even if nothing changes (seconds)."""

    actions: list[Action] = field(default_factory=list)
    requeue_after: float | None = None

    def requeue(self, seconds: float) -> None:
        """Ask to look again within ``seconds`` (the earliest of all requests wins)."""
        seconds = max(seconds, 0.0)
        if self.requeue_after is None or seconds < self.requeue_after:
            self.requeue_after = seconds

    def merge(self, other: Plan) -> Plan:
        """Append ``other``'s actions after this plan's; the earlier requeue wins."""
        self.actions.extend(other.actions)
        if other.requeue_after is not None:
            self.requeue(other.requeue_after)
        return self

    def writes(self) -> list[Action]:
        return [a for a in self.actions if not isinstance(a, Emit)]
