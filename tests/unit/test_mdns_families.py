"""mDNS address families: both unless the interfaces say otherwise; only IPv6 addresses a URL can carry."""

from __future__ import annotations

from zeroconf import IPVersion

from edgek8s.discovery.addresses import interface_addresses, usable_ipv6
from edgek8s.discovery.mdns import Candidate, ip_version


def test_ip_version_follows_the_interfaces() -> None:
    assert ip_version(None) is IPVersion.All
    assert ip_version(["127.0.0.1"]) is IPVersion.V4Only
    assert ip_version(["::1", "fd00::1"]) is IPVersion.V6Only
    assert ip_version(["10.0.0.1", "fd00::1"]) is IPVersion.All


def test_only_routable_ipv6_addresses_are_advertised() -> None:
    assert usable_ipv6("fd42::11") and usable_ipv6("2001:db8::1")
    for address in ("fe80::1", "fe80::1%eth0", "::1", "::", "ff02::fb", "10.0.0.1", "nonsense"):
        assert not usable_ipv6(address), address


def test_interface_addresses_put_ipv4_first() -> None:
    found = interface_addresses()
    families = [":" in a for a in found]
    assert families == sorted(families)
    assert not any(a.startswith("127.") or a == "::1" or a.startswith("fe80") for a in found)


def test_candidate_urls_bracket_ipv6() -> None:
    candidate = Candidate("m1._edgek8s._tcp.local.", ("192.168.1.10", "fd42::11"), 6443, "c", "sha256:x", "master")
    assert candidate.urls == ["https://192.168.1.10:6443", "https://[fd42::11]:6443"]
