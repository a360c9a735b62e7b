"""mDNS (DNS-SD) for masters: advertise ``_edgek8s._tcp.local.`` and browse for it; the only zeroconf user.

TXT properties: ``cluster`` (cluster id), ``ca`` (the CA's public-key hash, ``sha256:<hex>``), ``port``
(API port), ``role`` (``master``). An answer is only a hint: anyone on the LAN can answer mDNS, so a
joiner must verify the master over TLS against the CA pinned by its token before it sends anything
(``server/join.py`` does), and candidates whose advertised CA differs from the pin are tried last.

Uses zeroconf's asyncio API only (threaded Zeroconf blocks the loop). ``interfaces`` restricts the
sockets (tests pass ``["127.0.0.1"]`` to stay on loopback; by default every interface).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass

from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

logger = logging.getLogger(__name__)

SERVICE = "_edgek8s._tcp.local."


@dataclass(frozen=True, slots=True)
class Candidate:
    instance: str
    addresses: tuple[str, ...]
    port: int
    cluster: str
    ca_hash: str
    role: str

    @property
    def urls(self) -> list[str]:
        return [f"https://[{a}]:{self.port}" if ":" in a else f"https://{a}:{self.port}" for a in self.addresses]


def _zeroconf(interfaces: list[str] | None) -> AsyncZeroconf:
    if interfaces:
        return AsyncZeroconf(interfaces=interfaces, ip_version=IPVersion.V4Only)
    return AsyncZeroconf(ip_version=IPVersion.V4Only)


class Advertiser:
    """Announces one master while running; ``close`` says goodbye so browsers forget it at once."""

    def __init__(self, *, name: str, port: int, addresses: list[str], cluster: str, ca_hash: str,
                 interfaces: list[str] | None = None) -> None:
        self._info = AsyncServiceInfo(
            SERVICE,
            f"{name}.{SERVICE}",
            addresses=[socket.inet_aton(a) for a in addresses if ":" not in a],
            port=port,
            properties={"cluster": cluster, "ca": ca_hash, "port": str(port), "role": "master"},
            server=f"{name}.local.",
        )
        self._interfaces = interfaces
        self._zc: AsyncZeroconf | None = None

    async def start(self) -> None:
        self._zc = _zeroconf(self._interfaces)
        await self._zc.async_register_service(self._info, allow_name_change=True)
        logger.info("advertising %s on mDNS", self._info.name)

    async def close(self) -> None:
        if self._zc is not None:
            await self._zc.async_unregister_all_services()
            await self._zc.async_close()
            self._zc = None


def _text(properties: dict[bytes, bytes | None], key: str) -> str:
    value = properties.get(key.encode())
    return value.decode(errors="replace") if value else ""


async def browse(timeout: float = 3.0, *, interfaces: list[str] | None = None) -> list[Candidate]:
    """Masters that answered within ``timeout`` seconds (unverified hints)."""
    zc = _zeroconf(interfaces)
    names: set[str] = set()

    def on_change(zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange) -> None:
        if state_change is not ServiceStateChange.Removed:
            names.add(name)

    browser = AsyncServiceBrowser(zc.zeroconf, SERVICE, handlers=[on_change])
    try:
        await asyncio.sleep(timeout)
        candidates = []
        for name in sorted(names):
            info = AsyncServiceInfo(SERVICE, name)
            if not await info.async_request(zc.zeroconf, 1000):
                continue
            addresses = tuple(info.parsed_addresses(IPVersion.V4Only))
            if not addresses or not info.port:
                continue
            props = info.properties
            candidates.append(Candidate(name, addresses, info.port, _text(props, "cluster"), _text(props, "ca"),
                                        _text(props, "role")))
        return candidates
    finally:
        await browser.async_cancel()
        await zc.async_close()
