"""A master joined by token asks the existing masters to add its Raft address to the membership.

Raft needs the new member running before the change can commit (N to N+1 members needs the new one's
answer when N is 1 or 2), so the joining master starts its replica first (peers: the members it was
told) and then asks, with the admin certificate it signed itself, until one master says it is done
or it is already a member. Runs in the background; the master serves reads meanwhile (``/readyz``
stays 503 until it has a leader).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Sequence

from edgek8s.client.rest import RestClient
from edgek8s.model import errors
from edgek8s.raft.node import RaftNode

logger = logging.getLogger(__name__)


async def request_membership(raft: RaftNode, servers: Sequence[str], tls: ssl.SSLContext) -> None:
    attempt = 0
    while True:
        if raft.leader is not None and raft.address in raft.status().members:
            return  # a leader replicates to us: we are a member
        server = servers[attempt % len(servers)]
        attempt += 1
        try:
            async with RestClient(server, timeout=15.0, ssl_context=tls) as client:
                await client.create("/edgek8s/v1/members", {"address": raft.address})
            logger.info("joined the Raft membership via %s", server)
            return
        except errors.AlreadyExists:
            return
        except errors.StatusError as exc:
            logger.info("asking %s to add %s to the Raft membership: %s", server, raft.address, exc.message)
            await asyncio.sleep(min(5.0, 0.5 * attempt))
