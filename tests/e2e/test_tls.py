"""The API over TLS: client certificates from the cluster CA are required, the rest get a 401."""

from __future__ import annotations

import json
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgek8s.pki.certs import client_tls_context, issue, new_ca, write_pair
from tests.e2e.test_cli import run


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    state_dir = tmp_path_factory.mktemp("tls") / "state"
    run("up", "--state-dir", str(state_dir))
    try:
        yield state_dir
    finally:
        run("down", "--state-dir", str(state_dir), check=False)


def _api(state_dir: Path) -> str:
    return str(json.loads((state_dir / "cluster.json").read_text())["masters"][0]["api"])


def _get(url: str, context: ssl.SSLContext) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=10, context=context) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_admin_certificate_is_accepted(tls_cluster: Path) -> None:
    pki = tls_cluster / "pki"
    status, body = _get(f"{_api(tls_cluster)}/api/v1/namespaces", client_tls_context(
        pki / "ca.crt", pki / "admin.crt", pki / "admin.key"))
    assert status == 200 and body["kind"] == "NamespaceList"


def test_no_certificate_gets_401_but_public_endpoints_answer(tls_cluster: Path) -> None:
    context = client_tls_context(tls_cluster / "pki" / "ca.crt")
    status, body = _get(f"{_api(tls_cluster)}/api/v1/namespaces", context)
    assert (status, body["reason"]) == (401, "Unauthorized")
    status, version = _get(f"{_api(tls_cluster)}/version", context)
    assert status == 200 and version["minor"] == "32"


def test_kubectl_with_the_admin_kubeconfig(tls_cluster: Path) -> None:
    env = {"KUBECONFIG": str(tls_cluster / "admin.kubeconfig"), "HOME": str(tls_cluster), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(["kubectl", "get", "namespaces", "-o", "name"], capture_output=True, text=True, env=env,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "namespace/default" in result.stdout.split()


def test_kubectl_without_a_client_certificate_is_unauthorized(tls_cluster: Path, tmp_path: Path) -> None:
    config = (tls_cluster / "admin.kubeconfig").read_text()
    # A user with only a token edgek8s does not know (a user with no credentials at all makes kubectl prompt).
    lines = [line for line in config.splitlines() if "client-key-data" not in line]
    anonymous = "\n".join(
        "    token: not-a-known-token" if "client-certificate-data" in line else line for line in lines
    )
    kubeconfig = tmp_path / "anonymous.kubeconfig"
    kubeconfig.write_text(anonymous)
    env = {"KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(["kubectl", "get", "namespaces"], capture_output=True, text=True, env=env, timeout=60,
                            check=False)
    assert result.returncode != 0
    assert "You must be logged in to the server" in result.stderr


def test_a_certificate_from_another_ca_gets_401(tls_cluster: Path, tmp_path: Path) -> None:
    # As kube-apiserver: the handshake completes and the request is refused, so clients report an
    # authentication error instead of retrying a failed handshake (kubectl would hang).
    rogue_ca = new_ca("rogue")
    rogue = issue(rogue_ca, common_name="admin", organizations=["system:masters"], client=True)
    write_pair(rogue, tmp_path / "rogue.crt", tmp_path / "rogue.key")
    context = client_tls_context(tls_cluster / "pki" / "ca.crt", tmp_path / "rogue.crt", tmp_path / "rogue.key")
    status, body = _get(f"{_api(tls_cluster)}/api/v1/namespaces", context)
    assert (status, body["reason"]) == (401, "Unauthorized")


def test_a_worker_joins_the_local_cluster_with_a_token(tls_cluster: Path, tmp_path: Path) -> None:
    token = run("token", "create", "--kubeconfig", str(tls_cluster / "admin.kubeconfig")).stdout.strip()
    result = run("join", "--token", token, "--server", _api(tls_cluster), "--name", "pi-local",
                 "--config-dir", str(tmp_path / "etc"), "--data-dir", str(tmp_path / "data"))
    assert "joined as pi-local" in result.stdout
    env = {"KUBECONFIG": str(tmp_path / "etc" / "kubelet.kubeconfig"), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    nodes = subprocess.run(["kubectl", "get", "nodes"], capture_output=True, text=True, env=env, timeout=60,
                           check=False)
    assert nodes.returncode == 0, nodes.stderr
