"""The registry of leader-only loops: one line per controller or scheduler, in start order.

The gate starts every loop listed here on the leading master, each term, with a fenced client and the
shared informers (see ``edgek8s.server.leadership``).
"""

from __future__ import annotations

from edgek8s.client.loops import LeaderLoop
from edgek8s.config import ServerConfig


def leader_loops(config: ServerConfig) -> list[LeaderLoop]:
    loops: list[LeaderLoop] = []
    return loops
