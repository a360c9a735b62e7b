"""Joining, authentication and authorization over real TLS: one master in process, real clients.

Covers: token join of two workers through the real join flow, node A vs node B (403), bootstrap token
limits, expired/deleted tokens (401), token guessing (429), malformed and hostile CSRs, expired and
foreign certificates (401), renewal and revocation by Node deletion, serving and client certificate
rotation under load with no failed request.
"""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509

from edgek8s.client.certificates import CertificateKeeper, renew_certificate
from edgek8s.client.rest import RestClient
from edgek8s.model import errors
from edgek8s.pki import tokens
from edgek8s.pki.certs import (
    ca_hash,
    cert_info,
    client_tls_context,
    issue,
    new_ca,
    new_csr,
    reload_serving_cert,
    write_pair,
)
from edgek8s.pki.layout import Layout
from edgek8s.server.join import JoinRequest, join, service_argv
from tests.support.cluster import LocalCluster

POD = {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


@dataclass
class Env:
    cluster: LocalCluster
    url: str
    pki: Path
    admin: ssl.SSLContext
    ca_pem: bytes


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    pki = tmp_path / "pki"
    ca = new_ca()
    write_pair(ca, pki / "ca.crt", pki / "ca.key")
    write_pair(issue(ca, common_name="m0", ip_addresses=["127.0.0.1"], dns_names=["localhost"], server=True),
               pki / "server.crt", pki / "server.key")
    write_pair(issue(ca, common_name="admin", organizations=["system:masters"], client=True),
               pki / "admin.crt", pki / "admin.key")
    cluster = LocalCluster.build(tmp_path, size=1, api={
        "tls_cert_file": pki / "server.crt", "tls_key_file": pki / "server.key",
        "client_ca_file": pki / "ca.crt", "ca_key_file": pki / "ca.key"})
    await cluster.start()
    try:
        await cluster.wait_ready()
        admin = client_tls_context(pki / "ca.crt", pki / "admin.crt", pki / "admin.key")
        yield Env(cluster, cluster.urls[0], pki, admin, ca.cert_pem)
    finally:
        await cluster.stop()


async def make_token(env: Env, *, role: str = "worker", ttl: float = 3600) -> tokens.JoinToken:
    token = tokens.new_token(ca_hash(env.ca_pem))
    expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=ttl)
    async with RestClient(env.url, ssl_context=env.admin) as admin:
        await admin.create("/api/v1/namespaces/kube-system/secrets",
                           tokens.token_secret(token, role=role, expires=expires))
    return token


async def join_worker(env: Env, token: tokens.JoinToken, name: str, base: Path) -> Layout:
    layout = Layout(base / name)
    await join(JoinRequest(token=token, name=name, layout=layout, servers=(env.url,)))
    return layout


def node_tls(layout: Layout) -> ssl.SSLContext:
    return client_tls_context(layout.ca_cert, layout.node_cert, layout.node_key)


async def raw(url: str, method: str, path: str, *, tls: ssl.SSLContext, body: Any = None,
              headers: dict[str, str] | None = None, data: bytes | None = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.request(
        method, url + path, json=body, data=data, headers=headers, ssl=tls
    ) as response:
        return response.status, await response.json(content_type=None)


async def served_certificate(url: str, context: ssl.SSLContext) -> bytes:
    host, port = url.removeprefix("https://").rsplit(":", 1)
    _reader, writer = await asyncio.open_connection(host, int(port), ssl=context)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        assert der is not None
        return bytes(der)
    finally:
        writer.close()
        await writer.wait_closed()


def bearer(token: tokens.JoinToken) -> dict[str, str]:
    return {"Authorization": f"Bearer {token.bearer}"}


async def test_workers_join_and_node_a_cannot_touch_node_b(env: Env, tmp_path: Path) -> None:
    token = await make_token(env)
    a, b = await join_worker(env, token, "pi-a", tmp_path), await join_worker(env, token, "pi-b", tmp_path)
    assert oct(a.node_key.stat().st_mode & 0o777) == "0o600" and oct(a.root.stat().st_mode & 0o777) == "0o700"
    # Each node also gets its kubelet endpoint's serving certificate (server auth, its name as a SAN).
    serving = x509.load_pem_x509_certificate(a.kubelet_serving_cert.read_bytes())
    assert oct(a.kubelet_serving_key.stat().st_mode & 0o777) == "0o600"
    assert "--tls-cert-file=" + str(a.kubelet_serving_cert) in service_argv(a, tmp_path / "data")
    assert "pi-a" in serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName)
    assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in serving.extensions.get_extension_for_class(
        x509.ExtendedKeyUsage).value
    async with RestClient(env.url, ssl_context=node_tls(a)) as node_a, \
            RestClient(env.url, ssl_context=node_tls(b)) as node_b, \
            RestClient(env.url, ssl_context=env.admin) as admin:
        for name, client in (("pi-a", node_a), ("pi-b", node_b)):
            await client.create("/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
        with pytest.raises(errors.Forbidden):
            await node_a.create("/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "pi-c"}})
        node_b_obj = await node_a.get("/api/v1/nodes/pi-b")  # reading other nodes is allowed (networking)
        node_b_obj["metadata"]["labels"] = {"owned": "by-a"}
        with pytest.raises(errors.Forbidden):
            await node_a.replace("/api/v1/nodes/pi-b", node_b_obj)
        with pytest.raises(errors.Forbidden):
            await node_a.delete("/api/v1/nodes/pi-b")
        own = await node_a.get("/api/v1/nodes/pi-a")
        own["metadata"]["labels"] = {"mine": "yes"}
        await node_a.replace("/api/v1/nodes/pi-a", own)

        await admin.create("/api/v1/namespaces/default/secrets", {
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "b-secret"}, "data": {"k": "dg=="}})
        await admin.create("/api/v1/namespaces/default/configmaps", {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a-config"}, "data": {"k": "v"}})
        pod_b = {**POD, "metadata": {"name": "pod-b"}, "spec": {**POD["spec"], "nodeName": "pi-b",
                 "volumes": [{"name": "s", "secret": {"secretName": "b-secret"}}]}}
        pod_a = {**POD, "metadata": {"name": "pod-a"}, "spec": {**POD["spec"], "nodeName": "pi-a", "containers": [
            {"name": "c", "image": "busybox", "envFrom": [{"configMapRef": {"name": "a-config"}}]}]}}
        await admin.create("/api/v1/namespaces/default/pods", pod_b)
        await admin.create("/api/v1/namespaces/default/pods", pod_a)

        # Pods: own ones only, lists pinned to itself.
        with pytest.raises(errors.Forbidden):
            await node_a.get("/api/v1/namespaces/default/pods/pod-b")
        with pytest.raises(errors.Forbidden):
            await node_a.get("/api/v1/pods")
        with pytest.raises(errors.Forbidden):
            await node_a.get("/api/v1/pods", fieldSelector="spec.nodeName=pi-b")
        mine = await node_a.get("/api/v1/pods", fieldSelector="spec.nodeName=pi-a")
        assert [p["metadata"]["name"] for p in mine["items"]] == ["pod-a"]
        stolen = await node_b.get("/api/v1/namespaces/default/pods/pod-b")
        stolen["status"] = {"phase": "Failed"}
        with pytest.raises(errors.Forbidden):
            await node_a.replace("/api/v1/namespaces/default/pods/pod-b/status", stolen)
        with pytest.raises(errors.Forbidden):
            await node_a.delete("/api/v1/namespaces/default/pods/pod-b")
        own_pod = await node_a.get("/api/v1/namespaces/default/pods/pod-a")
        own_pod["status"] = {"phase": "Running"}
        updated = await node_a.replace("/api/v1/namespaces/default/pods/pod-a/status", own_pod)
        assert updated["status"]["phase"] == "Running"
        with pytest.raises(errors.Forbidden):  # a node cannot change a pod's spec, even its own pod
            await node_a.replace("/api/v1/namespaces/default/pods/pod-a", own_pod)

        # Secrets and configmaps: only those its pods reference.
        assert (await node_a.get("/api/v1/namespaces/default/configmaps/a-config"))["data"] == {"k": "v"}
        with pytest.raises(errors.Forbidden):
            await node_a.get("/api/v1/namespaces/default/secrets/b-secret")
        assert (await node_b.get("/api/v1/namespaces/default/secrets/b-secret"))["data"] == {"k": "dg=="}
        with pytest.raises(errors.Forbidden):
            await node_a.get("/api/v1/namespaces/kube-system/secrets")
        # Leases: its own in kube-node-lease.
        lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "pi-a"},
                 "spec": {"holderIdentity": "pi-a"}}
        await node_a.create("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", lease)
        with pytest.raises(errors.Forbidden):
            await node_a.create("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                                {**lease, "metadata": {"name": "pi-b"}})
        # Events: create.
        await node_a.create("/api/v1/namespaces/default/events", {
            "apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1"}, "reason": "Started",
            "involvedObject": {"kind": "Pod", "name": "pod-a", "namespace": "default"}})
        # Graceful deletion of its own pod.
        await node_a.delete("/api/v1/namespaces/default/pods/pod-a")
        # Admin-only endpoints.
        with pytest.raises(errors.Forbidden):
            await node_a.get("/edgek8s/v1/status")
        with pytest.raises(errors.Forbidden):
            await node_a.create("/edgek8s/v1/members", {"address": "127.0.0.1:1"})


async def test_tokens_only_join_and_expire(env: Env, tmp_path: Path) -> None:
    token = await make_token(env)
    status, body = await raw(env.url, "GET", "/api/v1/namespaces", tls=client_tls_context(env.pki / "ca.crt"),
                             headers=bearer(token))
    assert (status, body["reason"]) == (403, "Forbidden")
    expired = await make_token(env, ttl=-1)
    status, body = await raw(env.url, "POST", "/edgek8s/v1/join", tls=client_tls_context(env.pki / "ca.crt"),
                             headers=bearer(expired), body={"role": "worker", "csr": "x"})
    assert (status, body["reason"]) == (401, "Unauthorized")
    async with RestClient(env.url, ssl_context=env.admin) as admin:
        await admin.delete(f"/api/v1/namespaces/kube-system/secrets/{tokens.secret_name(token.token_id)}")
    status, body = await raw(env.url, "POST", "/edgek8s/v1/join", tls=client_tls_context(env.pki / "ca.crt"),
                             headers=bearer(token), body={"role": "worker", "csr": "x"})
    assert status == 401
    with pytest.raises(Exception, match="Unauthorized"):
        await join_worker(env, token, "late", tmp_path)


async def test_token_guessing_is_rate_limited(env: Env) -> None:
    await make_token(env)
    plain = client_tls_context(env.pki / "ca.crt")
    codes = []
    for i in range(15):
        guess = tokens.JoinToken("", f"{i:06d}", "a" * 16)
        status, _ = await raw(env.url, "POST", "/edgek8s/v1/join", tls=plain, headers=bearer(guess), body={})
        codes.append(status)
    assert set(codes[:10]) == {401} and set(codes[10:]) == {429}


async def test_hostile_and_malformed_join_requests(env: Env, tmp_path: Path) -> None:
    token = await make_token(env)
    plain = client_tls_context(env.pki / "ca.crt")

    async def submit(body: Any = None, data: bytes | None = None) -> tuple[int, Any]:
        return await raw(env.url, "POST", "/edgek8s/v1/join", tls=plain, headers=bearer(token), body=body, data=data)

    status, body = await submit({"role": "worker", "csr": "-----BEGIN CERTIFICATE REQUEST-----\nnope\n"})
    assert status == 400 and "invalid certificate signing request" in body["message"]
    status, body = await submit(data=b"{not json")
    assert status == 400
    masters_csr, _ = new_csr("admin", ["system:masters"])
    status, body = await submit({"role": "worker", "csr": masters_csr.decode()})
    assert status == 403 and "system:node:" in body["message"]
    escalate, _ = new_csr("system:node:pi-x", ["system:nodes", "system:masters"])
    status, body = await submit({"role": "worker", "csr": escalate.decode()})
    assert status == 403 and "organization" in body["message"]
    status, body = await submit({"role": "master", "csr": escalate.decode()})
    assert status == 403 and "only join workers" in body["message"]
    status, _ = await submit(data=b"{" + b" " * (4 * 1024 * 1024) + b"}")
    assert status == 413
    await join_worker(env, token, "pi-taken", tmp_path)
    async with RestClient(env.url, ssl_context=node_tls(Layout(tmp_path / "pi-taken"))) as node:
        await node.create("/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "pi-taken"}})
    again, _ = new_csr("system:node:pi-taken", ["system:nodes"])
    status, body = await submit({"role": "worker", "csr": again.decode()})
    assert status == 409 and "delete it first" in body["message"]
    # A node renewing its certificate may only ask for its own identity.
    node_context = node_tls(Layout(tmp_path / "pi-taken"))
    for name, groups in (("system:node:pi-other", ["system:nodes"]), ("system:node:pi-taken", ["system:masters"]),
                         ("system:node:pi-taken", ["system:nodes", "system:masters"])):
        other, _ = new_csr(name, groups)
        status, body = await raw(env.url, "POST", "/edgek8s/v1/renew", tls=node_context, body={"csr": other.decode()})
        assert status == 403 and "own identity" in body["message"], (name, groups)
    status, body = await raw(env.url, "POST", "/edgek8s/v1/renew", tls=node_context, body={"csr": "garbage"})
    assert status == 400


async def test_foreign_expired_and_revoked_certificates_get_401(env: Env, tmp_path: Path) -> None:
    foreign_ca = new_ca()
    write_pair(issue(foreign_ca, common_name="admin", organizations=["system:masters"], client=True),
               tmp_path / "f.crt", tmp_path / "f.key")
    status, body = await raw(env.url, "GET", "/api/v1/namespaces", tls=client_tls_context(
        env.pki / "ca.crt", tmp_path / "f.crt", tmp_path / "f.key"))
    assert (status, body["reason"]) == (401, "Unauthorized")
    from edgek8s.pki.certs import read_pair

    ca = read_pair(env.pki / "ca.crt", env.pki / "ca.key")
    write_pair(issue(ca, common_name="admin", organizations=["system:masters"], client=True,
                     lifetime=datetime.timedelta(seconds=-60)), tmp_path / "x.crt", tmp_path / "x.key")
    status, body = await raw(env.url, "GET", "/api/v1/namespaces", tls=client_tls_context(
        env.pki / "ca.crt", tmp_path / "x.crt", tmp_path / "x.key"))
    assert (status, body["reason"]) == (401, "Unauthorized")
    status, _ = await raw(env.url, "GET", "/version", tls=client_tls_context(env.pki / "ca.crt"))
    assert status == 200

    layout = await join_worker(env, await make_token(env), "pi-r", tmp_path)
    context = node_tls(layout)
    async with RestClient(env.url, ssl_context=context) as node:
        await node.create("/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "pi-r"}})
        await renew_certificate(layout, env.url, context)  # renewal keeps working, with the new certificate
        await node.get("/api/v1/nodes/pi-r")
    async with RestClient(env.url, ssl_context=env.admin) as admin:
        await admin.delete("/api/v1/nodes/pi-r")
    status, body = await raw(env.url, "GET", "/api/v1/nodes", tls=node_tls(layout))
    assert (status, body["reason"]) == (401, "Unauthorized")
    # Joining again under the same name (allowed now that the Node is gone) gives a working certificate.
    rejoined = await join_worker(env, await make_token(env), "pi-r", tmp_path / "again")
    status, _ = await raw(env.url, "GET", "/api/v1/nodes", tls=node_tls(rejoined))
    assert status == 200
    # kubectl delete nodes --all (a collection delete) revokes every deleted node's certificates.
    async with RestClient(env.url, ssl_context=node_tls(rejoined)) as node:
        await node.create("/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "pi-r"}})
    async with RestClient(env.url, ssl_context=env.admin) as admin:
        await admin.delete("/api/v1/nodes")
    status, body = await raw(env.url, "GET", "/api/v1/nodes", tls=node_tls(rejoined))
    assert (status, body["reason"]) == (401, "Unauthorized")


async def test_certificate_rotation_under_load_fails_no_request(env: Env, tmp_path: Path) -> None:
    layout = await join_worker(env, await make_token(env), "pi-load", tmp_path)
    keeper = CertificateKeeper(layout, [env.url])
    master = env.cluster.running()[0]
    assert master.tls is not None
    failures: list[str] = []
    served: set[bytes] = set()
    stop = asyncio.Event()

    async def load(worker: int) -> int:
        done = 0
        while not stop.is_set():
            # A fresh connection each time, so the renewed certificates are used on both sides.
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=keeper.context, force_close=True)) \
                    as session, session.get(env.url + "/api/v1/nodes") as response:
                if response.status != 200:
                    failures.append(f"{response.status} {await response.text()}")
                done += 1
        return done

    workers = [asyncio.create_task(load(i)) for i in range(4)]
    first_client = cert_info(layout.node_cert.read_bytes())
    # A watch opened before the rotations stays on its connection and keeps delivering events.
    watcher = RestClient(env.url, ssl_context=keeper.context)
    await watcher.__aenter__()
    events = watcher.watch("/api/v1/nodes", resourceVersion="0", allowWatchBookmarks="false")
    async with RestClient(env.url, ssl_context=keeper.context) as node:
        await node.create("/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "pi-load"}})
    assert (await anext(events))["object"]["metadata"]["name"] == "pi-load"
    for _ in range(3):
        await renew_certificate(layout, env.url, keeper.context)
        ca_dir = env.pki
        from edgek8s.pki.certs import read_pair, reissue

        fresh = reissue(read_pair(ca_dir / "ca.crt", ca_dir / "ca.key"), (ca_dir / "server.crt").read_bytes())
        write_pair(fresh, ca_dir / "server.crt", ca_dir / "server.key")
        reload_serving_cert(master.tls, ca_dir / "server.crt", ca_dir / "server.key")
        presented = await served_certificate(env.url, keeper.context)
        assert presented == ssl.PEM_cert_to_DER_cert(fresh.cert_pem.decode())  # new connections get the new one
        served.add(presented)
        await asyncio.sleep(0.3)
    stop.set()
    counts = await asyncio.gather(*workers)
    async with RestClient(env.url, ssl_context=env.admin) as admin:
        node = await admin.get("/api/v1/nodes/pi-load")
        node["metadata"]["labels"] = {"after": "rotation"}
        await admin.replace("/api/v1/nodes/pi-load", node)

    async def labelled() -> dict[str, Any]:
        # The node lifecycle controller may modify the heartbeat-less node first; the watch must still
        # deliver the admin's change on the connection opened before the rotations.
        async for event in events:
            if event["object"]["metadata"].get("labels") == {"after": "rotation"}:
                return event
        raise AssertionError("the watch ended before the admin's change")

    event = await asyncio.wait_for(labelled(), timeout=10)
    assert event["type"] == "MODIFIED"
    await events.aclose()
    await watcher.__aexit__(None, None, None)
    assert not failures, failures[:3]
    assert sum(counts) > 20
    assert len(served) == 3
    assert cert_info(layout.node_cert.read_bytes()).not_before >= first_client.not_before


async def test_client_and_serving_certificates_renew_by_themselves(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    ca = new_ca()
    write_pair(ca, pki / "ca.crt", pki / "ca.key")
    write_pair(issue(ca, common_name="m0", ip_addresses=["127.0.0.1"], server=True,
                     lifetime=datetime.timedelta(seconds=3)), pki / "server.crt", pki / "server.key")
    write_pair(issue(ca, common_name="admin", organizations=["system:masters"], client=True),
               pki / "admin.crt", pki / "admin.key")
    cluster = LocalCluster.build(tmp_path, size=1, api={
        "tls_cert_file": pki / "server.crt", "tls_key_file": pki / "server.key", "client_ca_file": pki / "ca.crt",
        "ca_key_file": pki / "ca.key", "node_cert_lifetime": 3.0})
    await cluster.start()
    stop = asyncio.Event()
    try:
        await cluster.wait_ready()
        env = Env(cluster, cluster.urls[0], pki, client_tls_context(pki / "ca.crt", pki / "admin.crt",
                                                                     pki / "admin.key"), ca.cert_pem)
        layout = await join_worker(env, await make_token(env), "pi-short", tmp_path)
        keeper = CertificateKeeper(layout, [env.url])
        keeper_task = asyncio.create_task(keeper.run(stop))
        client_certs, serving_certs, failures = set(), set(), 0
        deadline = asyncio.get_running_loop().time() + 8
        # A client that keeps its connections alive across renewals: each renewal gives it a new context,
        # so it never sends a request on a connection that presents an expired certificate.
        async with RestClient(env.url, ssl_context=keeper.credentials) as pooled:
            while asyncio.get_running_loop().time() < deadline:
                serving_certs.add(await served_certificate(env.url, keeper.context))
                client_certs.add(layout.node_cert.read_bytes())
                status, _ = await raw(env.url, "GET", "/api/v1/nodes", tls=keeper.context)
                failures += status != 200
                for _ in range(5):
                    await pooled.get("/api/v1/nodes")
                await asyncio.sleep(0.2)
        stop.set()
        await keeper_task
        assert failures == 0  # never a request with an expired certificate, on either side
        assert len(client_certs) >= 3 and len(serving_certs) >= 3
    finally:
        stop.set()
        await cluster.stop()
