"""Joining and certificate renewal: the only endpoints that sign certificates.

``GET /edgek8s/v1/cluster-info`` (public): the CA bundle and the masters' API URLs. A joiner fetches it
before it trusts anything and accepts it only if the CA's public-key hash equals the one in its token.

``POST /edgek8s/v1/join`` (a join token): ``{"csr": PEM, "role": "worker"|"master", ...}``. The CSR must
ask for exactly ``CN=system:node:<name>, O=system:nodes`` with a DNS-1123 name that no registered Node
or master uses (to join again under the same name, delete the Node first: that also revokes its old
certificates). A worker token joins workers only; a master token either. The answer holds the signed
client certificate, the CA bundle and the masters' URLs; for ``role: master`` also a serving certificate
for ``servingCsr`` (SANs: the addresses and hostnames the joiner lists, ``kubernetes.default.svc``,
``localhost``, 127.0.0.1), the CA key, the cluster secret and the Raft members. The joiner then starts
its replica with those members as peers and asks to be added (``server/membership.py``): a Raft
membership change from N to N+1 members only commits once the new member answers.

``POST /edgek8s/v1/renew`` (a valid client certificate): ``{"csr": PEM}`` whose subject is exactly the
caller's identity; answers a new certificate with a fresh lifetime. A node may instead send
``{"kubeletCsr", "addresses", "hostnames"}`` to renew its kubelet endpoint's serving certificate.

Signing runs in a thread; nothing here logs a key, a token or a certificate body.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import logging
import re
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from edgek8s.api.authn import REVOCATIONS, USER, User
from edgek8s.api.context import CONFIG, STORE, json_response, read_json
from edgek8s.config import ConfigError, parse_host_port
from edgek8s.model import errors
from edgek8s.model.resources import resource_id
from edgek8s.pki import tokens
from edgek8s.pki.certs import CertPair, CsrRequest, parse_csr, read_pair, sign_request

logger = logging.getLogger(__name__)

NODES = resource_id("", "nodes")
NODE_GROUP = "system:nodes"
NODE_PREFIX = "system:node:"
_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$")


class Signer:
    """The cluster CA of this master, read from disk once, off the event loop."""

    def __init__(self, cert_file: Path | None, key_file: Path | None) -> None:
        self._files = (cert_file, key_file)
        self._pair: CertPair | None = None
        self._lock = asyncio.Lock()

    async def ca(self) -> CertPair:
        async with self._lock:
            if self._pair is None:
                cert_file, key_file = self._files
                if cert_file is None or key_file is None:
                    raise errors.ServiceUnavailable("this master holds no CA key and cannot sign certificates")
                self._pair = await asyncio.to_thread(read_pair, cert_file, key_file)
            return self._pair

    async def bundle(self) -> bytes:
        if self._pair is not None:
            return self._pair.cert_pem
        if self._files[0] is None:
            raise errors.ServiceUnavailable("this master serves no TLS")
        return await asyncio.to_thread(self._files[0].read_bytes)


SIGNER = web.AppKey("signer", Signer)


def _field(body: Any, key: str, *, required: bool = True) -> str:
    value = body.get(key) if isinstance(body, dict) else None
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value:
        raise errors.BadRequest(f"the request needs a string field {key!r}")
    return value


def _parse(pem: str) -> CsrRequest:
    try:
        return parse_csr(pem.encode())
    except ValueError as exc:
        raise errors.BadRequest(f"invalid certificate signing request: {exc}") from None


def node_name_from_csr(csr: CsrRequest) -> str:
    """The node name a join CSR asks for, or a 403 naming what is wrong with its subject."""
    if not csr.common_name.startswith(NODE_PREFIX):
        raise errors.Forbidden(f"the request's common name must be {NODE_PREFIX}<node name>")
    if csr.organizations != (NODE_GROUP,):
        raise errors.Forbidden(f"the request's organization must be exactly {NODE_GROUP!r}")
    name = csr.common_name.removeprefix(NODE_PREFIX)
    if len(name) > 253 or not _DNS1123.match(name):
        raise errors.BadRequest(f"{name!r} is not a valid node name (lowercase DNS-1123 subdomain)")
    return name


def _lifetime(request: web.Request) -> datetime.timedelta:
    return datetime.timedelta(seconds=request.app[CONFIG].api.node_cert_lifetime)


def _servers(request: web.Request) -> list[str]:
    store = request.app[STORE]
    urls = sorted({m["api"] for m in store.state.masters.values()})
    own = request.app[CONFIG].api_url
    return urls if urls else [own]


async def cluster_info(request: web.Request) -> web.Response:
    ca = (await request.app[SIGNER].bundle()).decode()
    return json_response({"ca": ca, "servers": _servers(request)})


def _serving_sans(body: Any) -> tuple[list[str], list[str]]:
    dns, ips = ["localhost", "kubernetes.default.svc"], ["127.0.0.1"]
    for entry in body.get("addresses") or () if isinstance(body, dict) else ():
        try:
            ips.append(str(ipaddress.ip_address(str(entry))))
        except ValueError:
            raise errors.BadRequest(f"{entry!r} is not an IP address") from None
    for entry in body.get("hostnames") or () if isinstance(body, dict) else ():
        if not isinstance(entry, str) or len(entry) > 253 or not _HOSTNAME.match(entry):
            raise errors.BadRequest(f"{entry!r} is not a hostname")
        dns.append(entry)
    return sorted(set(dns)), sorted(set(ips))


async def join(request: web.Request) -> web.Response:
    user: User = request[USER]
    body = await read_json(request)
    role = _field(body, "role")
    if role not in tokens.ROLES:
        raise errors.BadRequest(f"role must be one of {', '.join(tokens.ROLES)}")
    if role == "master" and tokens.GROUP_PREFIX + "master" not in user.groups:
        raise errors.Forbidden("this token can only join workers")
    csr = _parse(_field(body, "csr"))
    name = node_name_from_csr(csr)
    store = request.app[STORE]
    existing, _ = store.state.get(NODES, "", name)
    if existing is not None or name in store.state.masters:
        raise errors.Conflict(
            f"a node named {name!r} is already registered; delete it first (kubectl delete node {name}) to join again",
            name=name, kind="nodes",
        )
    ca = await request.app[SIGNER].ca()
    lifetime = _lifetime(request)
    revoked_at = request.app[REVOCATIONS].revoked_at(name)
    if revoked_at is not None and time.time() < revoked_at + 1:
        # Certificate times have one-second precision: one issued in the revocation's second would count
        # as revoked.
        await asyncio.sleep(revoked_at + 1 - time.time())
    answer: dict[str, Any] = {"ca": ca.cert_pem.decode(), "servers": _servers(request)}
    if role == "master":
        serving = _parse(_field(body, "servingCsr"))
        raft_address = _field(body, "raftAddress")
        try:
            parse_host_port(raft_address, what="raftAddress")
        except ConfigError as exc:
            raise errors.BadRequest(str(exc)) from None
        dns, ips = _serving_sans(body)
        serving_pem = await asyncio.to_thread(
            sign_request, ca, serving, client=False, server=True, dns_names=dns, ip_addresses=ips, lifetime=lifetime
        )
        answer.update(
            servingCertificate=serving_pem.decode(),
            caKey=ca.key_pem.decode(),
            clusterSecret=request.app[CONFIG].raft.cluster_secret.hex(),
            raftMembers=sorted({store.raft.address, *store.raft.status().members} - {raft_address}),
        )
    if "kubeletCsr" in body:  # the kubelet endpoint's serving certificate (logs, exec, port-forward, top)
        answer["kubeletCertificate"] = await _sign_kubelet_serving(ca, body, name, lifetime)
    answer["certificate"] = (await asyncio.to_thread(sign_request, ca, csr, lifetime=lifetime)).decode()
    logger.info("%s joined %s as a %s", user.name, name, role)
    return json_response(answer, status=201)


async def _sign_kubelet_serving(ca: CertPair, body: Any, name: str, lifetime: datetime.timedelta) -> str:
    """A serving certificate for node ``name``'s kubelet endpoint: its name and the listed hostnames and
    addresses as SANs, server usage only."""
    kubelet = _parse(_field(body, "kubeletCsr"))
    if node_name_from_csr(kubelet) != name:
        raise errors.BadRequest("the kubelet's serving request must name the same node")
    dns, ips = _serving_sans(body)
    hostnames = [h for h in dns if h not in ("localhost", "kubernetes.default.svc")]
    return (await asyncio.to_thread(
        sign_request, ca, kubelet, client=False, server=True, dns_names=sorted({name, *hostnames}),
        ip_addresses=ips, lifetime=lifetime)).decode()


async def renew(request: web.Request) -> web.Response:
    """``{"csr"}``: a new client certificate for the caller's identity; ``{"kubeletCsr", "addresses",
    "hostnames"}`` (nodes only): a new serving certificate for the caller's kubelet endpoint."""
    user: User = request[USER]
    body = await read_json(request)
    ca = await request.app[SIGNER].ca()
    if isinstance(body, dict) and "kubeletCsr" in body:
        groups_ok = NODE_GROUP in user.groups and user.name.startswith(NODE_PREFIX)
        if not groups_ok:
            raise errors.Forbidden("only a node may renew a kubelet serving certificate")
        name = user.name.removeprefix(NODE_PREFIX)
        cert_pem = await _sign_kubelet_serving(ca, body, name, _lifetime(request))
        logger.info("renewed the kubelet serving certificate of %s", user.name)
        return json_response({"kubeletCertificate": cert_pem, "ca": ca.cert_pem.decode()}, status=201)
    csr = _parse(_field(body, "csr"))
    if csr.common_name != user.name or sorted(csr.organizations) != sorted(user.groups):
        raise errors.Forbidden("a renewal request must ask for exactly the caller's own identity")
    cert = await asyncio.to_thread(sign_request, ca, csr, lifetime=_lifetime(request))
    logger.info("renewed the certificate of %s", user.name)
    return json_response({"certificate": cert.decode(), "ca": ca.cert_pem.decode()}, status=201)


def add_routes(app: web.Application) -> None:
    api = app[CONFIG].api
    app[SIGNER] = Signer(api.client_ca_file, api.ca_key_file)
    app.router.add_get("/edgek8s/v1/cluster-info", cluster_info)
    app.router.add_post("/edgek8s/v1/join", join)
    app.router.add_post("/edgek8s/v1/renew", renew)
