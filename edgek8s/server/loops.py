"""The registry of leader-only loops: one line per controller or scheduler, in start order.

The gate starts every loop listed here on the leading master, each term, with a fenced client and the
shared informers (see ``edgek8s.server.leadership``).
"""

from __future__ import annotations

from edgek8s.client.loops import LeaderLoop
from edgek8s.config import ServerConfig
from edgek8s.controllers.deployment import DeploymentController
from edgek8s.controllers.garbagecollector import GarbageCollector
from edgek8s.controllers.namespace import NamespaceController
from edgek8s.controllers.replicaset import ReplicaSetController
from edgek8s.scheduler.loop import Scheduler


def leader_loops(config: ServerConfig) -> list[LeaderLoop]:
    loops: list[LeaderLoop] = [
        Scheduler(),
        DeploymentController(),
        ReplicaSetController(),
        GarbageCollector(),
        NamespaceController(),
    ]
    return loops
