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
