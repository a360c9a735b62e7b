"""Composition root of one master: the replicated store, the API server, the leader gate, and their lifetimes.

Start order: Raft replica (binds the Raft port, replays the journal), then the API listener, then, in
the background, once a leader is known: register this master in the store and make sure the system
namespaces exist; and the leader gate, which runs the leader-only loops (``server.loops``) while this
master leads. Stop order is the reverse. Nothing here is global: two masters can run in one
process (the component tests do).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from edgek8s.api.app import build_app
from edgek8s.api.context import CONTROLLER_STATUS
from edgek8s.api.kubelets import KUBELET_TLS
from edgek8s.client.loops import LeaderLoop
from edgek8s.config import ServerConfig
from edgek8s.model import errors
from edgek8s.pki.certs import ca_hash, server_tls_context
from edgek8s.pki.layout import Layout
from edgek8s.server.leadership import LeaderGate
from edgek8s.server.loops import leader_loops
from edgek8s.server.membership import request_membership
from edgek8s.server.serving import keep_own_certificate, own_certificates
from edgek8s.store.raftstore import RaftStore

if TYPE_CHECKING:
    from edgek8s.discovery.mdns import Advertiser

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class MdnsSettings:
    """Advertise this master on mDNS at ``addresses`` (sockets on ``interfaces``; empty: all)."""

    addresses: tuple[str, ...]
    interfaces: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class JoinSettings:
    """A master joined by token: ask one of ``servers`` (with ``tls``, an admin identity) to add it to Raft."""

    servers: tuple[str, ...]
    tls: ssl.SSLContext


class Master:
    def __init__(
        self, config: ServerConfig, *, loops: list[LeaderLoop] | None = None, mdns: MdnsSettings | None = None,
        join: JoinSettings | None = None, layout: Layout | None = None,
    ) -> None:
        self.config = config
        self._layout = layout  # the config dir: its admin and node certificates are renewed too
        self.store = RaftStore(config)
        self._runner: web.AppRunner | None = None
        self._bootstrap: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._mdns = mdns
        self._join = join
        self._advertiser: Advertiser | None = None
        self.tls: ssl.SSLContext | None = None
        self.app = build_app(self.store, config)
        self.gate = LeaderGate(self.store, identity=config.name,
                               loops=leader_loops(config) if loops is None else loops)
        self.app[CONTROLLER_STATUS] = self.gate.status

    async def start(self) -> None:
        await self.store.start()
        if self._join is not None:
            self._tasks.append(asyncio.create_task(
                request_membership(self.store.raft, self._join.servers, self._join.tls), name="raft-join"))
        # handler_cancellation: a watch whose client went away must end now, not at its next event.
        self._runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=2.0, handler_cancellation=True
        )
        await self._runner.setup()
        api = self.config.api
        tls = None
        if api.tls_cert_file and api.tls_key_file and api.client_ca_file:
            tls = server_tls_context(api.tls_cert_file, api.tls_key_file, api.client_ca_file, verify_in_app=True)
            self.tls = tls
            if api.ca_key_file is not None:
                own = own_certificates(api, self._layout, serving=tls, kubelet_client=lambda: self.app[KUBELET_TLS])
                self._tasks += [asyncio.create_task(keep_own_certificate(
                    cert, ca_cert=api.client_ca_file, ca_key=api.ca_key_file,
                    lifetime=datetime.timedelta(seconds=api.node_cert_lifetime)), name=f"{cert.what} certificate")
                    for cert in own]
        site = web.TCPSite(self._runner, api.host, api.port, reuse_address=True, ssl_context=tls)
        await site.start()
        self._bootstrap = asyncio.create_task(self._register(), name="master-bootstrap")
        self._tasks.append(asyncio.create_task(self.gate.run(), name="leader-gate"))
        if self._mdns is not None and api.client_ca_file is not None:
            # Imported here: zeroconf costs ~3 MB of RSS, wasted on a master that does not advertise.
            from edgek8s.discovery.mdns import Advertiser

            ca_pem = await asyncio.to_thread(api.client_ca_file.read_bytes)
            pin = ca_hash(ca_pem)
            self._advertiser = Advertiser(
                name=self.config.name, port=api.port, addresses=list(self._mdns.addresses),
                cluster=pin.removeprefix("sha256:")[:16], ca_hash=pin, interfaces=list(self._mdns.interfaces) or None)
            await self._advertiser.start()
        logger.info("master %s serving the API on %s", self.config.name, self.config.api_url)

    async def _register(self) -> None:
        delay = 0.1
        while True:
            try:
                await self.store.ready(timeout=30.0)
                await self.store.register_master(
                    name=self.config.name, raft_address=self.config.raft.self_address, api_url=self.config.api_url
                )
                await self.store.ensure_system_namespaces()
                return
            except errors.StatusError as exc:
                logger.info("bootstrap of master %s waiting: %s", self.config.name, exc.message)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def stop(self) -> None:
        if self._advertiser is not None:
            await self._advertiser.close()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._bootstrap is not None:
            self._bootstrap.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._bootstrap
        if self._runner is not None:
            await self._runner.cleanup()
        await self.store.stop()


async def run_master(
    config: ServerConfig, stop: asyncio.Event, *, mdns: MdnsSettings | None = None, join: JoinSettings | None = None,
    layout: Layout | None = None,
) -> None:
    master = Master(config, mdns=mdns, join=join, layout=layout)
    await master.start()
    try:
        await stop.wait()
    finally:
        await master.stop()
