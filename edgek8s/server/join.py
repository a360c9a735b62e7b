"""``edgek8s join --token T``: find a master, pin the CA, get this host's certificates, write the layout.

1. Candidates: ``--server URL``, or masters found by mDNS (only hints; those advertising the token's CA
   hash are tried first).
2. Pin: read the candidate's public cluster-info (the CA bundle) and accept it only if its public-key
   hash equals the token's (``pki.certs.unauthenticated_fetch_context`` explains why this is safe).
   A candidate with another CA is refused and logged; the token is never sent to it.
3. Join over TLS verified against the pinned CA: a CSR for ``system:node:<name>`` (the key stays here),
   plus, with ``--control-plane``, a serving CSR and this master's Raft address.
4. Write the layout (pki/layout.py) with 0600 keys in 0700 directories, and a systemd unit.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgek8s.client.rest import RestClient, TransportError, error_from_status
from edgek8s.config import join_host_port
from edgek8s.model import errors
from edgek8s.pki.certs import (
    CertPair,
    ca_hash,
    cert_lifetime,
    client_tls_context_from_pem,
    new_csr,
    unauthenticated_fetch_context,
)
from edgek8s.pki.layout import Layout, write_json, write_private
from edgek8s.pki.tokens import JoinToken
from edgek8s.server.cluster_init import issue_master_certificates
from edgek8s.server.kubeconfig import render_file_kubeconfig

logger = logging.getLogger(__name__)


class JoinError(Exception):
    """Joining failed; the message says why and what to do."""


@dataclass(frozen=True, slots=True, kw_only=True)
class JoinRequest:
    token: JoinToken
    name: str
    layout: Layout
    data_dir: Path = Path("/var/lib/edgek8s")
    servers: tuple[str, ...] = ()
    control_plane: bool = False
    raft_address: str = ""
    listen: str = ""
    addresses: tuple[str, ...] = ()
    hostnames: tuple[str, ...] = ()
    browse_timeout: float = 3.0
    mdns_interfaces: tuple[str, ...] = ()


async def candidates(request: JoinRequest) -> list[str]:
    if request.servers:
        return list(request.servers)
    from edgek8s.discovery.mdns import browse

    found = await browse(request.browse_timeout, interfaces=list(request.mdns_interfaces) or None)
    found.sort(key=lambda c: c.ca_hash != request.token.ca_hash)
    return [url for candidate in found for url in candidate.urls]


async def pinned_ca(url: str, token: JoinToken) -> bytes | None:
    """The CA bundle ``url`` serves if it matches the token's pin; None (logged) otherwise."""
    try:
        async with RestClient(url, timeout=5.0, ssl_context=unauthenticated_fetch_context()) as client:
            info = await client.get("/edgek8s/v1/cluster-info")
        ca_pem = str(info["ca"]).encode()
        if ca_hash(ca_pem) != token.ca_hash:
            logger.warning("refusing %s: its CA does not match the join token's CA hash", url)
            return None
        return ca_pem
    except (errors.StatusError, KeyError, TypeError, ValueError) as exc:
        logger.warning("cannot read cluster-info from %s: %s", url, exc)
        return None


async def _post_join(url: str, context: ssl.SSLContext, token: JoinToken, body: dict[str, Any]) -> dict[str, Any]:
    async with RestClient(url, timeout=30.0, ssl_context=context) as client:
        session = client.session
        async with session.post(url + "/edgek8s/v1/join", json=body, ssl=client.ssl,
                                headers={"Authorization": f"Bearer {token.bearer}"}) as response:
            raw = await response.read()
            if response.status >= 400:
                raise error_from_status(response.status, raw)
            answer: dict[str, Any] = await response.json()
            return answer


async def join(request: JoinRequest) -> dict[str, Any]:
    """Join the cluster; returns the master's answer (without keys) after writing the layout."""
    csr_pem, key_pem = await asyncio.to_thread(new_csr, f"system:node:{request.name}", ["system:nodes"])
    body: dict[str, Any] = {"csr": csr_pem.decode(), "role": "master" if request.control_plane else "worker"}
    serving_key = b""
    kubelet_csr, kubelet_key = await asyncio.to_thread(new_csr, f"system:node:{request.name}", ["system:nodes"])
    body.update(kubeletCsr=kubelet_csr.decode(), addresses=list(request.addresses),
                hostnames=list(request.hostnames))
    if request.control_plane:
        serving_csr, serving_key = await asyncio.to_thread(new_csr, request.name)
        body.update(servingCsr=serving_csr.decode(), raftAddress=request.raft_address,
                    addresses=list(request.addresses), hostnames=list(request.hostnames))
    urls = await candidates(request)
    if not urls:
        raise JoinError("no master found by mDNS; pass --server https://<master>:6443")
    last_error = "every master found serves another cluster's CA"
    for url in urls:
        ca_pem = await pinned_ca(url, request.token)
        if ca_pem is None:
            continue
        try:
            answer = await _post_join(url, client_tls_context_from_pem(ca_pem), request.token, body)
        except TransportError as exc:
            last_error = f"{url}: {exc.message}"
            continue
        except errors.StatusError as exc:
            raise JoinError(f"{url} refused to join this host: {exc.message}") from None
        if answer.get("ca") != ca_pem.decode():
            raise JoinError(f"{url} answered with another CA than the pinned one")
        await asyncio.to_thread(write_layout, request, answer, key_pem, serving_key, kubelet_key)
        logger.info("joined via %s as %s", url, request.name)
        return {k: v for k, v in answer.items() if k not in ("caKey", "clusterSecret")}
    raise JoinError(f"could not join: {last_error}")


def write_layout(request: JoinRequest, answer: dict[str, Any], key_pem: bytes, serving_key: bytes,
                 kubelet_key: bytes = b"") -> None:
    layout = request.layout
    layout.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    layout.root.chmod(0o700)
    servers = [str(s) for s in answer.get("servers") or ()]
    write_private(layout.ca_cert, str(answer["ca"]).encode(), mode=0o644)
    write_private(layout.node_key, key_pem)
    write_private(layout.node_cert, str(answer["certificate"]).encode(), mode=0o644)
    write_private(layout.kubelet_kubeconfig, render_file_kubeconfig(
        server=servers[0], ca_file=layout.ca_cert, cert_file=layout.node_cert, key_file=layout.node_key).encode())
    if answer.get("kubeletCertificate") and kubelet_key:
        write_private(layout.kubelet_serving_key, kubelet_key)
        write_private(layout.kubelet_serving_cert, str(answer["kubeletCertificate"]).encode(), mode=0o644)
    role = "master" if request.control_plane else "worker"
    if request.control_plane:
        ca = CertPair(str(answer["ca"]).encode(), str(answer["caKey"]).encode())
        write_private(layout.ca_key, ca.key_pem)
        write_private(layout.cluster_secret, (str(answer["clusterSecret"]) + "\n").encode())
        write_private(layout.serving_key, serving_key)
        write_private(layout.serving_cert, str(answer["servingCertificate"]).encode(), mode=0o644)
        host, _, port = request.listen.rpartition(":")
        host = host.strip("[]")
        own = f"https://{join_host_port(host if host not in ('0.0.0.0', '::', '') else request.addresses[0], port)}"
        # The master's own client certificates live as long as the cluster's signer issues them.
        issue_master_certificates(layout, ca, name=request.name, addresses=list(request.addresses),
                                  hostnames=list(request.hostnames), api_url=own, serving=False,
                                  lifetime=cert_lifetime(str(answer["certificate"]).encode()))
        write_json(layout.server_json, {"name": request.name, "raftAddress": request.raft_address,
                                        "peers": [str(p) for p in answer.get("raftMembers") or ()],
                                        "listen": request.listen, "joinServers": servers,
                                        "mdnsInterfaces": list(request.mdns_interfaces)})
        servers = sorted({*servers, own})
    write_json(layout.node_json, {"nodeName": request.name, "role": role, "servers": servers})
    write_unit(layout, request.data_dir)


def service_argv(layout: Layout, data_dir: Path) -> list[str]:
    """The command that runs this host's agent (worker) or master from the layout ``join`` wrote.

    The agent takes its credentials as explicit flags (``edgek8s agent --ca-file/--cert-file/--key-file``);
    the master reads ``--config-dir``."""
    node = layout.read_json(layout.node_json)
    base = [sys.executable, "-m", "edgek8s"]
    if node["role"] == "master":
        return [*base, "server", "--config-dir", str(layout.root), "--data-dir", str(data_dir)]
    servers = [f"--server={url}" for url in node["servers"]]
    endpoint = [f"--tls-cert-file={layout.kubelet_serving_cert}",
                f"--tls-private-key-file={layout.kubelet_serving_key}"] if layout.kubelet_serving_cert.exists() else []
    return [*base, "agent", f"--name={node['nodeName']}", *servers, f"--ca-file={layout.ca_cert}",
            f"--cert-file={layout.node_cert}", f"--key-file={layout.node_key}", f"--data-dir={data_dir}", *endpoint]


def write_unit(layout: Layout, data_dir: Path) -> Path:
    """A systemd unit for the agent (or the master) next to the layout; installing it is up to the caller."""
    argv = service_argv(layout, data_dir)
    command = argv[3]
    unit = layout.root / f"edgek8s-{command}.service"
    unit.write_text(
        "[Unit]\n"
        f"Description=edgek8s {command}\n"
        "Wants=network-online.target\nAfter=network-online.target\n\n"
        "[Service]\n"
        f"ExecStart={shlex.join(argv)}\n"
        # KillMode=process: stopping the agent must not kill the pods' conmon processes.
        "Restart=always\nRestartSec=2\nKillMode=process\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )
    return unit
