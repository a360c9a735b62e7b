"""The registry of leader-only loops: one line per controller or scheduler, in start order.

The gate starts every loop listed here on the leading master, each term, with a fenced client and the
shared informers (see ``edgek8s.server.leadership``).
"""

from __future__ import annotations

from edgek8s.client.loops import LeaderLoop
from edgek8s.config import ServerConfig
from edgek8s.controllers.cronjob import CronJobController
from edgek8s.controllers.daemonset import DaemonSetController
from edgek8s.controllers.deployment import DeploymentController
from edgek8s.controllers.disruption import DisruptionController
from edgek8s.controllers.endpoints import EndpointsController
from edgek8s.controllers.eventttl import EventTTLController, EventTTLSettings
from edgek8s.controllers.garbagecollector import GarbageCollector
from edgek8s.controllers.job import JobController, JobSettings
from edgek8s.controllers.namespace import NamespaceController
from edgek8s.controllers.nodelifecycle import NodeLifecycleController, NodeLifecycleSettings
from edgek8s.controllers.replicaset import ReplicaSetController
from edgek8s.controllers.revocations import RevocationPruner, RevocationPruneSettings
from edgek8s.controllers.serviceaccount import ServiceAccountsController
from edgek8s.scheduler.loop import Scheduler


def leader_loops(config: ServerConfig) -> list[LeaderLoop]:
    c = config.controllers
    loops: list[LeaderLoop] = [
        Scheduler(),
        DeploymentController(),
        ReplicaSetController(),
        GarbageCollector(),
        NamespaceController(),
        ServiceAccountsController(),
        NodeLifecycleController(settings=NodeLifecycleSettings(
            grace_period=c.node_monitor_grace_period, default_toleration_seconds=c.default_toleration_seconds)),
        DaemonSetController(),
        JobController(settings=JobSettings(backoff_base=c.job_backoff_base, backoff_max=c.job_backoff_max)),
        CronJobController(),
        EndpointsController(),
        EventTTLController(settings=EventTTLSettings(ttl=c.event_ttl)),
        DisruptionController(),
        RevocationPruner(settings=RevocationPruneSettings(
            lifetime=config.api.node_cert_lifetime, interval=min(600.0, max(1.0, config.api.node_cert_lifetime / 4)))),
    ]
    return loops
