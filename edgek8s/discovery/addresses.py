"""This host's interface addresses for SANs and mDNS, via ifaddr (zeroconf's own dependency).

IPv4 first (URLs built from the first address stay the familiar form), then IPv6. Loopback is left out,
and so are IPv6 link-local addresses: they only mean something with a zone (``%eth0``) that a certificate
SAN or another host's URL cannot carry.
"""

from __future__ import annotations

import ipaddress

import ifaddr


def usable_ipv6(address: str) -> bool:
    try:
        parsed = ipaddress.IPv6Address(address.split("%", 1)[0])
    except ValueError:
        return False
    return not (parsed.is_link_local or parsed.is_loopback or parsed.is_multicast or parsed.is_unspecified)


def interface_addresses() -> list[str]:
    v4, v6 = set(), set()
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str):
                if not ip.ip.startswith("127."):
                    v4.add(ip.ip)
            elif usable_ipv6(ip.ip[0]):
                v6.add(ip.ip[0])
    return sorted(v4, key=ipaddress.IPv4Address) + sorted(v6, key=ipaddress.IPv6Address)
