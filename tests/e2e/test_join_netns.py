"""Joining across simulated hosts: network namespaces on one bridge, real mDNS multicast, no loopback.

Three "Raspberry Pis" (a master, a rogue master of another cluster, a new worker) each in its own network
namespace, with one veth each into a switch namespace holding a bridge (``mcast_snooping 0`` so mDNS
flows). The worker joins with only a token: it finds the masters by multicast, the rogue (announced with
the real cluster's CA hash by a liar, and sorting first) is refused by the pin, the real master signs.

SAFETY (reference/environment.md): the simulated subnet is routed to ``unreachable`` in the root namespace
before any host exists, and the hosts are connected only to each other.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgek8s.pki.certs import cert_identity

SUBNET = "10.241.93"
PREFIX = f"ej{os.getpid() % 10000}"
HOSTS = {"m1": 11, "w1": 12, "rg": 13}

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                                reason="needs root and iproute2 for network namespaces")


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@contextlib.contextmanager
def simulated_hosts(switch: str, addresses: dict[str, str], subnet: str, *,
                    v6: bool = False) -> Iterator[dict[str, str]]:
    """One netns per host (``addresses``: host -> address/prefix on its eth0) on a bridge in ``switch``."""
    family = ["-6"] if v6 else []
    ip(*family, "route", "replace", "unreachable", subnet)  # before any host exists
    names = {host: f"{PREFIX}{host}" for host in addresses}
    try:
        ip("netns", "add", switch)
        ip("-n", switch, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        ip("-n", switch, "link", "set", "br0", "up")
        for host, netns in names.items():
            ip("netns", "add", netns)
            ip("-n", switch, "link", "add", f"p-{host}", "type", "veth", "peer", "name", "eth0", "netns", netns)
            ip("-n", switch, "link", "set", f"p-{host}", "master", "br0", "up")
            ip("-n", netns, *family, "addr", "add", addresses[host], "dev", "eth0", *(["nodad"] if v6 else []))
            ip("-n", netns, "link", "set", "eth0", "up")
            ip("-n", netns, "link", "set", "lo", "up")
        yield names
    finally:
        for netns in [*names.values(), switch]:
            subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False, timeout=10)
        subprocess.run(["ip", *family, "route", "del", "unreachable", subnet], capture_output=True, check=False)


@pytest.fixture(scope="module")
def hosts() -> Iterator[dict[str, str]]:
    with simulated_hosts(f"{PREFIX}sw", {h: f"{SUBNET}.{n}/24" for h, n in HOSTS.items()}, f"{SUBNET}.0/24") as names:
        yield names


def in_host(netns: str, *args: str) -> list[str]:
    return ["ip", "netns", "exec", netns, sys.executable, "-m", *args]


def wait_ready(netns: str, url: str, ca: Path, timeout: float = 40) -> None:
    probe = ("import sys, urllib.request; from edgek8s.pki.certs import client_tls_context as c; "
             "urllib.request.urlopen(sys.argv[1] + '/readyz', timeout=2, context=c(sys.argv[2]))")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ca.exists() and subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", probe, url, str(ca)],
                                          capture_output=True, timeout=10, check=False).returncode == 0:
            return
        time.sleep(0.3)
    raise TimeoutError(f"{url} not ready")


def test_a_worker_joins_over_multicast_and_the_rogue_is_refused(hosts: dict[str, str], tmp_path: Path) -> None:
    started: list[subprocess.Popen[bytes]] = []

    def start(netns: str, log: str, *args: str) -> subprocess.Popen[bytes]:
        with open(tmp_path / log, "wb") as out:
            process = subprocess.Popen(in_host(netns, *args), stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        started.append(process)
        return process

    try:
        for host, name in (("m1", "m1"), ("rg", "rogue")):
            address = f"{SUBNET}.{HOSTS[host]}"
            start(hosts[host], f"{host}.log", "edgek8s", "server", "--cluster-init", "--config-dir",
                  str(tmp_path / host), "--data-dir", str(tmp_path / host / "data"), "--name", name,
                  f"--raft-address={address}:7946", f"--listen={address}:6443")
        for host in ("m1", "rg"):
            wait_ready(hosts[host], f"https://{SUBNET}.{HOSTS[host]}:6443", tmp_path / host / "ca.crt")
        token = subprocess.run(in_host(hosts["m1"], "edgek8s", "token", "create", "--config-dir",
                                       str(tmp_path / "m1")), capture_output=True, text=True, check=True,
                               timeout=60).stdout.strip()
        pin = "sha256:" + token.removeprefix("EK10").split("::")[0]
        start(hosts["rg"], "liar.log", "tests.support.mdns_liar", "--name", "a-rogue", "--address",
              f"{SUBNET}.{HOSTS['rg']}", "--port", "6443", "--ca-hash", pin)
        time.sleep(1.0)
        joined = subprocess.run(in_host(hosts["w1"], "edgek8s", "join", "--token", token, "--name", "w1",
                                        "--config-dir", str(tmp_path / "w1"), "--data-dir", str(tmp_path / "w1d")),
                                capture_output=True, text=True, timeout=120, check=False)
        assert joined.returncode == 0, joined.stdout + joined.stderr
        assert f"refusing https://{SUBNET}.{HOSTS['rg']}:6443" in joined.stderr
        assert f"joined via https://{SUBNET}.{HOSTS['m1']}:6443 as w1" in joined.stderr
        assert "rejected a bearer token" not in (tmp_path / "rg.log").read_text()
        node_cert = (tmp_path / "w1" / "pki" / "node.crt").read_bytes()
        assert cert_identity(node_cert) == ("system:node:w1", ("system:nodes",))
        assert (tmp_path / "w1" / "ca.crt").read_bytes() == (tmp_path / "m1" / "ca.crt").read_bytes()
    finally:
        for process in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


SUBNET6 = "fd42:e6e6:93::"
HOSTS6 = {"m6": 0x11, "w6": 0x12}


@pytest.fixture(scope="module")
def hosts6() -> Iterator[dict[str, str]]:
    """Two hosts with IPv6 only on their link (IPv4 only on loopback): mDNS and the join must use IPv6."""
    with simulated_hosts(f"{PREFIX}s6", {h: f"{SUBNET6}{n:x}/64" for h, n in HOSTS6.items()}, f"{SUBNET6}/64",
                         v6=True) as names:
        yield names


def test_a_worker_finds_and_joins_a_master_over_ipv6_mdns(hosts6: dict[str, str], tmp_path: Path) -> None:
    master = f"{SUBNET6}{HOSTS6['m6']:x}"
    url = f"https://[{master}]:6443"
    log = open(tmp_path / "m6.log", "wb")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(in_host(
        hosts6["m6"], "edgek8s", "server", "--cluster-init", "--config-dir", str(tmp_path / "m6"), "--data-dir",
        str(tmp_path / "m6" / "data"), "--name", "m6", "--raft-address=127.0.0.1:7946", f"--listen=[{master}]:6443",
        f"--advertise-address={master}"), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    try:
        wait_ready(hosts6["m6"], url, tmp_path / "m6" / "ca.crt")
        token = subprocess.run(in_host(hosts6["m6"], "edgek8s", "token", "create", "--config-dir",
                                       str(tmp_path / "m6")), capture_output=True, text=True, check=True,
                               timeout=60).stdout.strip()
        joined = subprocess.run(in_host(hosts6["w6"], "edgek8s", "join", "--token", token, "--name", "w6",
                                        "--config-dir", str(tmp_path / "w6"), "--data-dir", str(tmp_path / "w6d"),
                                        "--browse-timeout", "3"),
                                capture_output=True, text=True, timeout=120, check=False)
        assert joined.returncode == 0, joined.stdout + joined.stderr + (tmp_path / "m6.log").read_text()
        assert f"joined via {url} as w6" in joined.stderr  # found by IPv6 multicast, verified over IPv6 TLS
        assert cert_identity((tmp_path / "w6" / "pki" / "node.crt").read_bytes()) == (
            "system:node:w6", ("system:nodes",))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
