"""This host's IPv4 interface addresses (loopback excluded), via ifaddr (zeroconf's own dependency)."""

from __future__ import annotations

import ifaddr


def interface_addresses() -> list[str]:
    found = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str) and not ip.ip.startswith("127."):
                found.append(ip.ip)
    return sorted(set(found))
