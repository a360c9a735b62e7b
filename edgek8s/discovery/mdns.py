"""mDNS (DNS-SD) for masters: advertise ``_edgek8s._tcp.local.`` and browse for it; the only zeroconf user.

TXT properties: ``cluster`` (cluster id), ``ca`` (the CA's public-key hash, ``sha256:<hex>``), ``port``
(API port), ``role`` (``master``). An answer is only a hint: anyone on the LAN can answer mDNS, so a
joiner must verify the master over TLS against the CA pinned by its token before it sends anything
(``server/join.py`` does), and candidates whose advertised CA differs from the pin are tried last.

Uses zeroconf's asyncio API only (threaded Zeroconf blocks the loop). ``interfaces`` restricts the
sockets (tests pass ``["127.0.0.1"]`` to stay on loopback; by default every interface). Both IPv4 and
IPv6 are used (``IPVersion.All``) unless the interfaces given are of one family, or the host cannot open
an IPv6 socket; a master advertises its IPv6 addresses next to its IPv4 ones, and joiners try every
address of a candidate, IPv4 first. The trust model does not change with the family.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass

from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from edgek8s.discovery.addresses import usable_ipv6

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


def ip_version(interfaces: list[str] | None) -> IPVersion:
    """IPv4 and IPv6 unless the interface addresses given are all of one family."""
    if interfaces:
        families = {":" in address for address in interfaces}
        if families == {False}:
            return IPVersion.V4Only
        if families == {True}:
            return IPVersion.V6Only
    return IPVersion.All


def _zeroconf(interfaces: list[str] | None) -> AsyncZeroconf:
    version = ip_version(interfaces)
    kwargs = {"interfaces": interfaces} if interfaces else {}
    try:
        return AsyncZeroconf(ip_version=version, **kwargs)  # type: ignore[arg-type]
    except OSError as exc:
        if version is not IPVersion.All or interfaces:
            raise
        # A host with IPv6 disabled cannot open the IPv6 socket: IPv4 alone still works.
        logger.info("mDNS over IPv6 unavailable (%s); using IPv4 only", exc)
        return AsyncZeroconf(ip_version=IPVersion.V4Only)


def _packed(address: str) -> bytes:
    if ":" in address:
        return socket.inet_pton(socket.AF_INET6, address.split("%", 1)[0])
    return socket.inet_aton(address)


class Advertiser:
    """Announces one master while running; ``close`` says goodbye so browsers forget it at once."""

    def __init__(self, *, name: str, port: int, addresses: list[str], cluster: str, ca_hash: str,
                 interfaces: list[str] | None = None) -> None:
        self._info = AsyncServiceInfo(
            SERVICE,
            f"{name}.{SERVICE}",
            addresses=[_packed(a) for a in addresses if ":" not in a or usable_ipv6(a)],
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
            found = info.parsed_addresses(IPVersion.All)
            # IPv4 first; IPv6 link-local answers need a zone a URL cannot name here: left out.
            addresses = tuple([a for a in found if ":" not in a] + [a for a in found if ":" in a and usable_ipv6(a)])
            if not addresses or not info.port:
                continue
            props = info.properties
            candidates.append(Candidate(name, addresses, info.port, _text(props, "cluster"), _text(props, "ca"),
                                        _text(props, "role")))
        return candidates
    finally:
        await browser.async_cancel()
        await zc.async_close()
