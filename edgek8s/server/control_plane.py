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
import logging

from aiohttp import web

from edgek8s.api.app import build_app
from edgek8s.api.context import CONTROLLER_STATUS
from edgek8s.client.loops import LeaderLoop
from edgek8s.config import ServerConfig
from edgek8s.model import errors
from edgek8s.pki.certs import server_tls_context
from edgek8s.server.leadership import LeaderGate
from edgek8s.server.loops import leader_loops
from edgek8s.store.raftstore import RaftStore

logger = logging.getLogger(__name__)


class Master:
    def __init__(self, config: ServerConfig, *, loops: list[LeaderLoop] | None = None) -> None:
        self.config = config
        self.store = RaftStore(config)
        self._runner: web.AppRunner | None = None
        self._bootstrap: asyncio.Task[None] | None = None
        self._gate_task: asyncio.Task[None] | None = None
        self.app = build_app(self.store, config)
        self.gate = LeaderGate(self.store, identity=config.name,
                               loops=leader_loops(config) if loops is None else loops)
        self.app[CONTROLLER_STATUS] = self.gate.status

    async def start(self) -> None:
        await self.store.start()
        # handler_cancellation: a watch whose client went away must end now, not at its next event.
        self._runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=2.0, handler_cancellation=True
        )
        await self._runner.setup()
        api = self.config.api
        tls = None
        if api.tls_cert_file and api.tls_key_file and api.client_ca_file:
            tls = server_tls_context(api.tls_cert_file, api.tls_key_file, api.client_ca_file)
        site = web.TCPSite(self._runner, api.host, api.port, reuse_address=True, ssl_context=tls)
        await site.start()
        self._bootstrap = asyncio.create_task(self._register(), name="master-bootstrap")
        self._gate_task = asyncio.create_task(self.gate.run(), name="leader-gate")
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
        for task in (self._gate_task, self._bootstrap):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._runner is not None:
            await self._runner.cleanup()
        await self.store.stop()


async def run_master(config: ServerConfig, stop: asyncio.Event) -> None:
    master = Master(config)
    await master.start()
    try:
        await stop.wait()
    finally:
        await master.stop()
