"""Joining across simulated hosts: network namespaces on one bridge, real mDNS multicast, no loopback.

Three "Raspberry Pis" (a master, a rogue master of another cluster, a new worker) each in its own network
namespace on one bridge (tests/support/simhosts.py; ``mcast_snooping 0`` so mDNS flows). The worker
joins with only a token: it finds the masters by multicast, the rogue (announced with the real cluster's
CA hash by a liar, and sorting first) is refused by the pin, the real master signs.

SAFETY: SimNetwork routes the subnet to ``unreachable`` in the root namespace before any host exists.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgek8s.pki.certs import cert_identity
from tests.support.simhosts import Host, SimNetwork, needs_simhosts

SUBNET = "10.241.93.0/24"

pytestmark = needs_simhosts()


@pytest.fixture(scope="module")
def hosts() -> Iterator[dict[str, Host]]:
    with SimNetwork(SUBNET) as network:
        yield {name: network.add_host(name) for name in ("m1", "w1", "rg")}


def in_host(host: Host, *args: str) -> list[str]:
    return host.argv(sys.executable, "-m", *args)


def wait_ready(host: Host, url: str, ca: Path, timeout: float = 40) -> None:
    probe = ("import sys, urllib.request; from edgek8s.pki.certs import client_tls_context as c; "
             "urllib.request.urlopen(sys.argv[1] + '/readyz', timeout=2, context=c(sys.argv[2]))")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ca.exists() and subprocess.run(host.argv(sys.executable, "-c", probe, url, str(ca)),
                                          capture_output=True, timeout=10, check=False).returncode == 0:
            return
        time.sleep(0.3)
    raise TimeoutError(f"{url} not ready")


def test_a_worker_joins_over_multicast_and_the_rogue_is_refused(hosts: dict[str, Host], tmp_path: Path) -> None:
    started: list[subprocess.Popen[bytes]] = []

    def start(host: Host, log: str, *args: str) -> subprocess.Popen[bytes]:
        with open(tmp_path / log, "wb") as out:
            process = subprocess.Popen(in_host(host, *args), stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        started.append(process)
        return process

    try:
        for host, name in (("m1", "m1"), ("rg", "rogue")):
            address = hosts[host].address
            start(hosts[host], f"{host}.log", "edgek8s", "server", "--cluster-init", "--config-dir",
                  str(tmp_path / host), "--data-dir", str(tmp_path / host / "data"), "--name", name,
                  f"--raft-address={address}:7946", f"--listen={address}:6443")
        for host in ("m1", "rg"):
            wait_ready(hosts[host], f"https://{hosts[host].address}:6443", tmp_path / host / "ca.crt")
        token = subprocess.run(in_host(hosts["m1"], "edgek8s", "token", "create", "--config-dir",
                                       str(tmp_path / "m1")), capture_output=True, text=True, check=True,
                               timeout=60).stdout.strip()
        pin = "sha256:" + token.removeprefix("EK10").split("::")[0]
        start(hosts["rg"], "liar.log", "tests.support.mdns_liar", "--name", "a-rogue", "--address",
              hosts["rg"].address, "--port", "6443", "--ca-hash", pin)
        time.sleep(1.0)
        joined = subprocess.run(in_host(hosts["w1"], "edgek8s", "join", "--token", token, "--name", "w1",
                                        "--config-dir", str(tmp_path / "w1"), "--data-dir", str(tmp_path / "w1d")),
                                capture_output=True, text=True, timeout=120, check=False)
        assert joined.returncode == 0, joined.stdout + joined.stderr
        assert f"refusing https://{hosts['rg'].address}:6443" in joined.stderr
        assert f"joined via https://{hosts['m1'].address}:6443 as w1" in joined.stderr
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


PREFIX6 = "fd42:e6e6:93::"
SUBNET6 = f"{PREFIX6}/64"


@pytest.fixture(scope="module")
def hosts6() -> Iterator[dict[str, Host]]:
    """Two hosts whose link has IPv6 only (their IPv4 address is removed; IPv4 stays on loopback): mDNS
    and the join can only work over IPv6. SAFETY: the IPv6 subnet is routed to ``unreachable`` in the
    root namespace before any host exists, as SimNetwork does for its IPv4 one."""
    subprocess.run(["ip", "-6", "route", "replace", "unreachable", SUBNET6], check=True, capture_output=True)
    try:
        with SimNetwork("10.241.94.0/24", prefix=f"s6{os.getpid() % 100000}") as network:  # beside `hosts`
            hosts = {name: network.add_host(name) for name in ("m6", "w6")}
            for index, host in enumerate(hosts.values()):
                for change in (("-6", "addr", "add", f"{PREFIX6}{0x11 + index:x}/64", "dev", "eth0", "nodad"),
                               ("addr", "del", f"{host.address}/24", "dev", "eth0")):
                    subprocess.run(["ip", "-n", host.netns, *change], check=True, capture_output=True, timeout=10)
            yield hosts
    finally:
        subprocess.run(["ip", "-6", "route", "del", "unreachable", SUBNET6], capture_output=True, check=False)


def test_a_worker_finds_and_joins_a_master_over_ipv6_mdns(hosts6: dict[str, Host], tmp_path: Path) -> None:
    master = f"{PREFIX6}11"
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
