"""``edgek8s server --cluster-init``: the first master's CA, certificates, cluster secret and settings.

Writes a ``Layout`` (see pki/layout.py): the CA (ECDSA P-256, 10 years, unique name), the serving
certificate (SANs: every address and hostname given or found on the host's interfaces, 127.0.0.1,
localhost, kubernetes.default.svc), the cluster secret, an admin client certificate and kubeconfig,
and ``server.json``. Refuses to overwrite an existing CA. Runs before the event loop starts; the async
callers (join) run the same signing helpers in threads.
"""

from __future__ import annotations

import datetime
import socket
from pathlib import Path

from edgek8s.config import KUBELET_CLIENT_NAME, ConfigError, join_host_port
from edgek8s.pki.certs import CertPair, ca_hash, issue, new_ca, write_pair
from edgek8s.pki.layout import Layout, write_json, write_private
from edgek8s.server.kubeconfig import render_kubeconfig, write_kubeconfig
from edgek8s.server.secrets import generate_secret_file


def serving_names(addresses: list[str], hostnames: list[str]) -> tuple[list[str], list[str]]:
    dns = {"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", socket.gethostname(),
           *hostnames}
    ips = {"127.0.0.1", *addresses}
    return sorted(dns), sorted(ips)


def issue_master_certificates(layout: Layout, ca: CertPair, *, name: str, addresses: list[str],
                              hostnames: list[str], api_url: str, serving: bool = True,
                              lifetime: datetime.timedelta | None = None) -> None:
    """The serving certificate (unless a joining master got it signed remotely), the admin pair, and the
    client certificate this master presents to kubelets (logs, exec, port-forward, metrics)."""
    if serving:
        dns, ips = serving_names(addresses, hostnames)
        pair = issue(ca, common_name=name, dns_names=dns, ip_addresses=ips, server=True, lifetime=lifetime)
        write_pair(pair, layout.serving_cert, layout.serving_key)
    admin = issue(ca, common_name="admin", organizations=["system:masters"], client=True, lifetime=lifetime)
    write_pair(admin, layout.admin_cert, layout.admin_key)
    write_kubeconfig(layout.admin_kubeconfig, render_kubeconfig(server=api_url, ca_pem=ca.cert_pem, client=admin))
    kubelet_client = issue(ca, common_name=KUBELET_CLIENT_NAME, organizations=["system:masters"], client=True,
                           lifetime=lifetime)
    write_pair(kubelet_client, layout.kubelet_client_cert, layout.kubelet_client_key)


def cluster_init(layout: Layout, *, name: str, raft_address: str, listen: str, addresses: list[str],
                 hostnames: list[str], mdns_interfaces: list[str] | None = None,
                 lifetime: datetime.timedelta | None = None) -> str:
    """Create everything a first master needs; returns the CA hash a join token pins."""
    if layout.ca_key.exists():
        raise ConfigError(f"{layout.ca_key} exists: this host is initialised already "
                          f"(remove {layout.root} to start over)")
    layout.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    layout.root.chmod(0o700)
    ca = new_ca()
    write_private(layout.ca_key, ca.key_pem)
    write_private(layout.ca_cert, ca.cert_pem, mode=0o644)
    generate_secret_file(layout.cluster_secret)
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    url_host = host if host not in ("0.0.0.0", "::", "") else (addresses[0] if addresses else "127.0.0.1")
    api_url = f"https://{join_host_port(url_host, port)}"
    issue_master_certificates(layout, ca, name=name, addresses=addresses, hostnames=hostnames,
                              api_url=api_url, lifetime=lifetime)
    write_json(layout.server_json, {"name": name, "raftAddress": raft_address, "peers": [], "listen": listen,
                                    "mdnsInterfaces": list(mdns_interfaces or [])})
    write_json(layout.node_json, {"nodeName": name, "role": "master", "servers": [api_url]})
    return ca_hash(ca.cert_pem)


def host_addresses() -> list[str]:
    """This host's interface addresses (IPv4 first, then routable IPv6; loopback and link-local
    excluded), for SANs and mDNS."""
    from edgek8s.discovery.addresses import interface_addresses

    return interface_addresses()


def default_layout(path: str | None) -> Layout:
    return Layout(Path(path) if path else Path("/etc/edgek8s"))
