"""Free TCP ports for a local cluster's members, picked outside the kernel's ephemeral range.

``bind(0)`` hands out ports from the ephemeral range, the same range the kernel uses for the source port
of every outgoing connection; between picking such a port and the member binding it, any connection on
the machine (a kubectl, a client, a Raft peer) may take it, and the member then fails with "address
already in use". Ports below the ephemeral range are never chosen by the kernel on its own, so a pick
there stays free unless another program deliberately binds it. A port is handed out once per process.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10_000
_handed_out: set[int] = set()


def _ephemeral_start() -> int:
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports that are free on ``host`` now and were not handed out before."""
    top = max(_ephemeral_start() - 1, _LOWEST + count * 10)
    ports: list[int] = []
    for _ in range(count * 1_000):
        if len(ports) == count:
            break
        port = random.randint(_LOWEST, top)
        if port not in _handed_out and port not in ports and _bindable(host, port):
            ports.append(port)
    else:
        if len(ports) < count:
            raise OSError(f"no {count} free TCP ports between {_LOWEST} and {top} on {host}")
    _handed_out.update(ports)
    return ports


def free_port(host: str = "127.0.0.1") -> int:
    return free_ports(1, host)[0]
