"""SimNetwork: simulated hosts ("Raspberry Pis") on one machine, in network namespaces on one bridge.

    root netns:  ip route unreachable SUBNET   (added before any host exists, removed last)
    switch netns: br0 (mcast_snooping 0) ── p-<host> veth ──> eth0 in the host's netns (own IP, own MAC)
                                         └─ p-ctl veth ─────> eth0 in the controller netns (test drivers)

- SAFETY: the subnet is routed to ``unreachable`` in the root namespace *before* any host is created,
  so a mistake (a client left in the root namespace) fails with EHOSTUNREACH instead of sending
  traffic out of the machine; hosts are linked only to the bridge, never to a real interface.
- Processes run in a host with ``host.argv(cmd)`` (``nsenter --net=/run/netns/X``: keeps the mount
  namespace, so podman and /sys still work, unlike ``ip netns exec``). The test's own clients run in
  the controller namespace: ``with network.entered(network.controller):`` moves the *calling thread*
  (the event loop's, in an async test) there, so every socket it opens and every child it forks is
  inside; the thread's original namespace is restored on exit.
- Faults, each applied in 10-20 ms and undone by ``heal``:
  ``isolate(host)``: an nft table in the host drops everything but loopback (the host keeps its links
  and TCP state: a real partition, not a closed socket); ``cut(a, b, port=...)``: a bridge-family nft
  rule in the switch drops a<->b (optionally only TCP to or from ``port``); ``lose(a, b, percent)``:
  the same rule with ``numgen random mod 100 < percent``; ``port_down(host)``: the switch port goes down.
- ``close`` deletes every namespace and the route, and is safe to call after a partial setup or twice:
  use the object as a context manager so a failing test leaves nothing behind.
Nothing here is specific to edgek8s: hosts are named, addressed and faulted; what runs in them is the
caller's business (ports and data dirs are per host, never shared), so ``edgek8s up`` can reuse it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType

import pytest

_CLONE_NEWNET = 0x40000000
_NETNS_DIR = "/run/netns"


def available() -> str | None:
    """None when simulated hosts can run here, else why not (for ``pytest.mark.skipif``)."""
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    missing = [tool for tool in ("ip", "nft", "nsenter") if shutil.which(tool) is None]
    return f"needs {', '.join(missing)}" if missing else None


def needs_simhosts() -> pytest.MarkDecorator:
    """The mark for a test module that creates simulated hosts: skipped with the reason where it cannot."""
    reason = available()
    return pytest.mark.skipif(reason is not None, reason=str(reason))


def _run(*argv: str, stdin: str | None = None) -> None:
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=20, check=False)
    if done.returncode != 0:
        raise SimNetworkError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()}")


class SimNetworkError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Host:
    name: str
    netns: str
    address: str
    port: str  # the host's veth end in the switch namespace

    @property
    def netns_path(self) -> str:
        return f"{_NETNS_DIR}/{self.netns}"

    def argv(self, *command: str) -> list[str]:
        """``command`` run inside this host's network namespace."""
        return ["nsenter", f"--net={self.netns_path}", "--", *command]


def _setns(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


@dataclass
class SimNetwork:
    """Hosts on a private /24 (``subnet``), named ``<prefix><host>``; ``.1`` is the controller, hosts get
    ``.10``, ``.11``, ... in the order they are added."""

    subnet: str
    prefix: str = field(default_factory=lambda: f"sh{os.getpid() % 100000}")
    hosts: dict[str, Host] = field(default_factory=dict)
    _routed: bool = False
    _switch_made: bool = False
    _faults: set[str] = field(default_factory=set)  # "host:<netns>" or "switch"

    def __post_init__(self) -> None:
        net = ipaddress.ip_network(self.subnet)
        if not net.is_private or net.prefixlen != 24 or net.version != 4:
            raise ValueError(f"a private IPv4 /24 is required, got {self.subnet}")
        self._net = net
        self.switch = f"{self.prefix}sw"

    # --- lifecycle ------------------------------------------------------------------------------------

    def __enter__(self) -> SimNetwork:
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def open(self) -> None:
        # SAFETY: before anything exists, so no packet for the subnet can ever take the default route.
        _run("ip", "route", "replace", "unreachable", str(self._net))
        self._routed = True
        _run("ip", "netns", "add", self.switch)
        self._switch_made = True
        _run("ip", "-n", self.switch, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        _run("ip", "-n", self.switch, "link", "set", "br0", "up")
        self.controller = self.add_host("ctl", octet=1)

    def close(self) -> None:
        for host in list(self.hosts.values()):
            subprocess.run(["ip", "netns", "del", host.netns], capture_output=True, check=False, timeout=20)
        self.hosts.clear()
        if self._switch_made:
            subprocess.run(["ip", "netns", "del", self.switch], capture_output=True, check=False, timeout=20)
            self._switch_made = False
        if self._routed:  # last: never a moment with hosts but no unreachable route
            subprocess.run(["ip", "route", "del", "unreachable", str(self._net)], capture_output=True, check=False)
            self._routed = False

    def add_host(self, name: str, *, octet: int | None = None) -> Host:
        if not self._routed:
            raise SimNetworkError("open the network first (the unreachable route must exist)")
        if name in self.hosts or len(name) > 8:
            raise ValueError(f"host name {name!r} taken or longer than 8 characters")
        octet = octet if octet is not None else 10 + sum(h.name != "ctl" for h in self.hosts.values())
        address = str(self._net.network_address + octet)
        host = Host(name=name, netns=f"{self.prefix}{name}", address=address, port=f"p-{name}")
        _run("ip", "netns", "add", host.netns)
        self.hosts[name] = host
        mac = f"02:5e:{octet >> 8 & 0xff:02x}:{octet & 0xff:02x}:{len(self.hosts):02x}:01"
        _run("ip", "-n", self.switch, "link", "add", host.port, "type", "veth", "peer", "name", "eth0",
             "netns", host.netns)
        _run("ip", "-n", self.switch, "link", "set", host.port, "master", "br0", "up")
        _run("ip", "-n", host.netns, "link", "set", "eth0", "address", mac)
        _run("ip", "netns", "exec", host.netns, "sysctl", "-qw", "net.ipv4.conf.eth0.arp_notify=1")
        _run("ip", "-n", host.netns, "addr", "add", f"{address}/{self._net.prefixlen}", "dev", "eth0")
        _run("ip", "-n", host.netns, "link", "set", "eth0", "up")
        _run("ip", "-n", host.netns, "link", "set", "lo", "up")
        return host

    @contextlib.contextmanager
    def entered(self, host: Host) -> Iterator[None]:
        """Move the calling thread into ``host``'s network namespace until the block ends."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            _setns(host.netns_path)
            try:
                yield
            finally:
                libc = ctypes.CDLL(None, use_errno=True)
                if libc.setns(own, _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "could not return to the original network namespace")
        finally:
            os.close(own)

    # --- faults ---------------------------------------------------------------------------------------

    def isolate(self, host: Host) -> None:
        """Drop every packet in and out of ``host`` except on loopback (TCP connections stay open)."""
        self._nft(host.netns, "table inet simfault {\n"
                  " chain in { type filter hook input priority -10; policy drop; iif lo accept; }\n"
                  " chain out { type filter hook output priority -10; policy drop; oif lo accept; }\n}\n")
        self._faults.add(f"host:{host.netns}")

    def cut(self, a: Host, b: Host, *, port: int | None = None, percent: int = 100) -> None:
        """Drop traffic between ``a`` and ``b`` in the switch, both ways (only TCP to/from ``port`` if given;
        only ``percent`` % of packets, at random, if below 100)."""
        if not 0 < percent <= 100:
            raise ValueError("percent must be in 1..100")
        match = f"tcp dport {port} " if port is not None else ""
        match_back = f"tcp sport {port} " if port is not None else ""
        chance = f"numgen random mod 100 < {percent} " if percent < 100 else ""
        rules = [f"ip saddr {a.address} ip daddr {b.address} {match}{chance}drop",
                 f"ip saddr {b.address} ip daddr {a.address} {match}{chance}drop"]
        if port is not None:
            rules += [f"ip saddr {a.address} ip daddr {b.address} {match_back}{chance}drop",
                      f"ip saddr {b.address} ip daddr {a.address} {match_back}{chance}drop"]
        script = "table bridge simfault {\n chain cut { type filter hook forward priority -10; policy accept; }\n}\n"
        script += "".join(f"add rule bridge simfault cut {rule}\n" for rule in rules)
        self._nft(self.switch, script)
        self._faults.add("switch")

    def lose(self, a: Host, b: Host, percent: int) -> None:
        self.cut(a, b, percent=percent)

    def port_down(self, host: Host) -> None:
        _run("ip", "-n", self.switch, "link", "set", host.port, "down")

    def heal(self) -> None:
        """Undo every fault: drop the nft tables, bring every switch port up."""
        for fault in sorted(self._faults):
            if fault == "switch":
                self._nft(self.switch, "delete table bridge simfault\n")
            else:
                self._nft(fault.removeprefix("host:"), "delete table inet simfault\n")
        self._faults.clear()
        for host in self.hosts.values():
            _run("ip", "-n", self.switch, "link", "set", host.port, "up")

    @staticmethod
    def _nft(netns: str, script: str) -> None:
        _run("ip", "netns", "exec", netns, "nft", "-f", "-", stdin=script)
