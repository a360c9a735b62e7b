"""The simulated-hosts support itself: addressing, the safety route, every fault and its healing, cleanup.

Sockets are opened inside a host by moving the test's thread there (``SimNetwork.entered``): a socket
stays in the namespace it was created in, so a server in b and a client in a need no subprocess.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.support.simhosts import Host, SimNetwork, needs_simhosts

pytestmark = needs_simhosts()

SUBNET = "10.241.95.0/24"


def listen(network: SimNetwork, host: Host) -> socket.socket:
    with network.entered(host):
        return socket.create_server((host.address, 0))


def reaches(network: SimNetwork, source: Host, target: Host, port: int, timeout: float = 0.3) -> bool:
    with network.entered(source), contextlib.suppress(OSError):
        socket.create_connection((target.address, port), timeout=timeout).close()
        return True
    return False


def eventually_reaches(network: SimNetwork, source: Host, target: Host, port: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if reaches(network, source, target, port):
            return True
    return False


@pytest.fixture
def network() -> Iterator[SimNetwork]:
    with SimNetwork(SUBNET, prefix="shtest") as net:
        yield net
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert "shtest" not in names, "a namespace survived close()"
    routes = subprocess.run(["ip", "route", "show", SUBNET], capture_output=True, text=True, check=True).stdout
    assert routes.strip() == "", "the unreachable route survived close()"


def test_faults_cut_what_they_say_and_heal(network: SimNetwork) -> None:
    a, b = network.add_host("a"), network.add_host("b")
    assert (a.address, b.address, network.controller.address) == ("10.241.95.10", "10.241.95.11", "10.241.95.1")
    route = subprocess.run(["ip", "route", "show", SUBNET], capture_output=True, text=True, check=True).stdout
    assert route.startswith("unreachable"), route
    with pytest.raises(OSError):  # from the root namespace nothing reaches a host, nor leaves the machine
        socket.create_connection((b.address, 9), timeout=1)
    server, other = listen(network, b), listen(network, b)
    port, other_port = server.getsockname()[1], other.getsockname()[1]
    try:
        assert reaches(network, a, b, port) and reaches(network, network.controller, b, port)

        network.cut(a, b)
        assert not reaches(network, a, b, port) and reaches(network, network.controller, b, port)
        network.heal()
        assert reaches(network, a, b, port)

        network.cut(a, b, port=port)  # only that TCP port
        assert not reaches(network, a, b, port) and reaches(network, a, b, other_port)
        network.heal()

        network.isolate(b)
        assert not reaches(network, a, b, port) and not reaches(network, network.controller, b, port)
        network.heal()
        assert reaches(network, network.controller, b, port)

        network.port_down(b)
        assert not reaches(network, a, b, port)
        network.heal()
        assert eventually_reaches(network, a, b, port)
    finally:
        server.close()
        other.close()


def test_loss_drops_some_packets_not_all(network: SimNetwork) -> None:
    a, b = network.add_host("a"), network.add_host("b")
    with network.entered(b):
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with network.entered(a):
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        receiver.bind((b.address, 0))
        receiver.settimeout(2.0)
        sender.sendto(b"warm", receiver.getsockname())  # resolve b's MAC first (ARP is not dropped)
        assert receiver.recv(64) == b"warm"
        receiver.settimeout(0.5)
        network.lose(a, b, 50)
        for i in range(200):
            sender.sendto(b"%d" % i, receiver.getsockname())
        received = 0
        with contextlib.suppress(TimeoutError):
            while True:
                receiver.recv(64)
                received += 1
        assert 40 < received < 160, f"{received} of 200 datagrams arrived at 50% loss"
    finally:
        sender.close()
        receiver.close()
