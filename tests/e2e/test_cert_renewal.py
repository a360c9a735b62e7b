"""Certificate lifecycle with real processes: every certificate renews by itself, in place, under load.

``edgek8s up`` with ``EDGEK8S_CERT_LIFETIME=45``: three masters (the first by --cluster-init, two joined
by token), one Podman worker, the sample app. Every certificate lives 45 s and is renewed at 30 s. For
several renewal rounds a load runs: API requests from a client whose own (admin) certificate is renewed
by ``CertificateKeeper`` through ``/edgek8s/v1/renew``, a watch that stays open, ``kubectl logs`` and
``kubectl exec`` through the API proxy (so the masters' kubelet-client and the kubelet's serving
certificates are used on fresh connections), and one ``kubectl logs -f`` that stays open throughout.
Nothing may fail, no process restarts, the pod is never restarted, and ``edgek8s certs check`` shows
the new expiry. Nothing is ever valid longer than 45 s, so a certificate that was not renewed and
reloaded would fail the load within seconds of expiring.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgek8s.client.certificates import CertificateKeeper
from edgek8s.client.rest import RestClient
from edgek8s.pki.certs import cert_info
from edgek8s.pki.layout import ClientFiles, Layout, write_private

EDGEK8S = [sys.executable, "-m", "edgek8s"]
LIFETIME = 45.0
RUN_FOR = 110.0  # at least three renewals of every certificate (one every 30 s)

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    state_dir = tmp_path_factory.mktemp("renewal") / "state"
    env = {**os.environ, "EDGEK8S_CERT_LIFETIME": str(LIFETIME)}
    try:
        up = subprocess.run([*EDGEK8S, "up", "--state-dir", str(state_dir)], capture_output=True, text=True,
                            env=env, timeout=600, check=False)
        assert up.returncode == 0, up.stdout + up.stderr
        yield state_dir
    finally:
        subprocess.run([*EDGEK8S, "down", "--state-dir", str(state_dir)], capture_output=True, timeout=300,
                       check=False)


def manifest(state_dir: Path) -> dict[str, Any]:
    return dict(json.loads((state_dir / "cluster.json").read_text()))


def kubectl_env(state_dir: Path) -> dict[str, str]:
    return {"KUBECONFIG": str(state_dir / "admin.kubeconfig"), "HOME": str(state_dir), "PATH": "/usr/bin:/bin"}


def certificates(state_dir: Path) -> dict[str, Path]:
    found = {}
    for node in (*manifest(state_dir)["masters"], *manifest(state_dir)["workers"]):
        layout = Layout(Path(node["config_dir"]))
        for label, path in (("serving", layout.serving_cert), ("admin", layout.admin_cert),
                            ("kubelet-client", layout.kubelet_client_cert), ("node", layout.node_cert),
                            ("kubelet-serving", layout.kubelet_serving_cert)):
            if path.exists():
                found[f"{node['name']}/{label}"] = path
    return found


async def kubectl(state_dir: Path, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        "kubectl", *args, env=kubectl_env(state_dir), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, (out + err).decode(errors="replace")


async def test_every_certificate_renews_in_place_under_load(state: Path, tmp_path: Path) -> None:
    info = manifest(state)
    pids = {n["name"]: n["pid"] for n in (*info["masters"], *info["workers"])}
    certs = certificates(state)
    assert {"master-1/serving", "master-1/admin", "master-1/kubelet-client", "master-2/serving",
            "worker-1/node", "worker-1/kubelet-serving"} <= set(certs)
    for path in certs.values():  # the cluster's lifetime reached every signer and every holder
        cert = cert_info(path.read_bytes())
        assert (cert.not_after - cert.not_before).total_seconds() <= LIFETIME + 301, path
    seen: dict[str, set[str]] = {name: set() for name in certs}

    # An admin client of its own whose certificate is renewed through the API (CertificateKeeper).
    master = Layout(Path(info["masters"][0]["config_dir"]))
    files = ClientFiles(master.ca_cert, tmp_path / "client.crt", tmp_path / "client.key")
    write_private(files.key, master.admin_key.read_bytes())
    write_private(files.cert, master.admin_cert.read_bytes(), mode=0o644)
    urls = [m["api"] for m in info["masters"]]
    keeper = CertificateKeeper(files, urls)
    stop = asyncio.Event()
    renewal = asyncio.create_task(keeper.run(stop))

    pods = json.loads((await kubectl(state, "get", "pods", "-l", "app=hello", "-o", "json"))[1])["items"]
    assert len(pods) == 1
    pod = pods[0]
    name, uid = pod["metadata"]["name"], pod["metadata"]["uid"]
    follow = await asyncio.create_subprocess_exec(
        "kubectl", "logs", "-f", name, env=kubectl_env(state), stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE, start_new_session=True)
    failures: list[str] = []
    counts = {"api": 0, "logs": 0, "exec": 0, "watch events": 0}
    deadline = time.monotonic() + RUN_FOR

    async def api_load(client: RestClient, worker: int) -> None:
        while time.monotonic() < deadline:
            try:
                await client.get("/api/v1/namespaces/default/pods", labelSelector="app=hello")
                await client.create("/api/v1/namespaces/default/configmaps", {
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": f"load-{worker}-{counts['api']}"}, "data": {"k": "v"}})
                counts["api"] += 2
            except Exception as exc:  # every failure is a test failure, recorded with its cause
                failures.append(f"api: {type(exc).__name__}: {exc}")
            await asyncio.sleep(0.05)

    async def watch(client: RestClient) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            async for _event in client.watch("/api/v1/namespaces/default/configmaps", timeoutSeconds="600"):
                counts["watch events"] += 1

    async def streams() -> None:
        while time.monotonic() < deadline:
            for kind, args in (("logs", ("logs", name, "--tail=5")), ("exec", ("exec", name, "--", "echo", "hi"))):
                code, out = await kubectl(state, *args)
                if code != 0 or (kind == "exec" and out.strip() != "hi"):
                    failures.append(f"kubectl {kind}: {code} {out.strip()[:300]}")
                counts[kind] += 1
            await asyncio.sleep(1.0)

    async def observe() -> None:
        while time.monotonic() < deadline:
            for label, path in certs.items():
                with contextlib.suppress(OSError, ValueError):
                    seen[label].add(cert_info(path.read_bytes()).not_after.isoformat())
            await asyncio.sleep(2.0)

    try:
        async with RestClient(urls[0], ssl_context=keeper.credentials) as client, \
                RestClient(urls[1], ssl_context=keeper.credentials) as other:
            watcher = asyncio.create_task(watch(other))
            await asyncio.gather(api_load(client, 0), api_load(other, 1), streams(), observe())
            await asyncio.sleep(1.0)
            watcher_alive = not watcher.done()
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
    finally:
        stop.set()
        await renewal
        follow_alive = follow.returncode is None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(follow.pid, signal.SIGTERM)
        _out, follow_err = await asyncio.wait_for(follow.communicate(), timeout=10)

    assert failures == [], sorted(set(failures))[:10]
    assert counts["api"] > 200 and counts["logs"] >= 10 and counts["exec"] >= 10, counts
    assert watcher_alive and counts["watch events"] > 50, counts  # the watch opened before the renewals goes on
    assert follow_alive, follow_err.decode(errors="replace")  # so does the log stream
    for label, values in seen.items():
        assert len(values) >= 3, f"{label} was renewed {len(values) - 1} times in {RUN_FOR} s"
    assert cert_info(files.cert.read_bytes()).not_after > cert_info(master.admin_cert.read_bytes()).not_before
    # No process restarted, no pod restarted or replaced, the node stayed Ready.
    for node_name, pid in pids.items():
        os.kill(pid, 0)  # raises if the process is gone
        assert pid == {n["name"]: n["pid"] for n in (*manifest(state)["masters"], *manifest(state)["workers"])}[
            node_name]
    after = json.loads((await kubectl(state, "get", "pod", name, "-o", "json"))[1])
    assert after["metadata"]["uid"] == uid
    assert [c["restartCount"] for c in after["status"]["containerStatuses"]] == [0]
    node = json.loads((await kubectl(state, "get", "node", "worker-1", "-o", "json"))[1])
    assert any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])
    # certs check shows the current (renewed) expiry of the worker's certificates.
    checker = await asyncio.create_subprocess_exec(
        *EDGEK8S, "certs", "check", "--config-dir", str(state / "worker-1"), stdout=asyncio.subprocess.PIPE)
    check = (await asyncio.wait_for(checker.communicate(), timeout=60))[0].decode()
    assert checker.returncode == 0, check
    node_expiry = cert_info((state / "worker-1" / "pki" / "node.crt").read_bytes()).not_after
    assert node_expiry.strftime("%Y-%m-%dT%H:%M:%SZ") in check and "EXPIRED" not in check, check
    assert "kubelet-srv" in check
