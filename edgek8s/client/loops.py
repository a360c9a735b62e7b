"""LeaderLoop: what runs only on the leading master (controllers, the scheduler), plugged into the gate.

The gate (``edgek8s.server.leadership``) calls ``run`` once per leadership term, with a client fenced at
that term's epoch and the term's shared informers; it cancels ``run`` when leadership is lost. ``run``
returning means the loop is done for this term; raising ``Fenced`` ends the term for every loop; any
other exception restarts this loop alone after a backoff.
"""

from __future__ import annotations

from typing import Protocol

from edgek8s.client.informer import InformerFactory
from edgek8s.client.interface import ClusterClient


class LeaderLoop(Protocol):
    name: str

    async def run(self, client: ClusterClient, informers: InformerFactory) -> None: ...
