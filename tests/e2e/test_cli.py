"""The edgek8s command as a user runs it: up, status, snapshot save/restore, down, bad flags."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgek8s.pki.certs import client_tls_context
from tests.support.cluster import free_port

EDGEK8S = [sys.executable, "-m", "edgek8s"]


def run(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*EDGEK8S, *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def http(method: str, url: str, body: dict[str, Any] | None = None, tls: ssl.SSLContext | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10, context=tls) as response:
        return json.loads(response.read())


def admin_tls(state_dir: Path) -> ssl.SSLContext:
    first = state_dir / "master-1"  # the --cluster-init master's config dir
    return client_tls_context(first / "ca.crt", first / "pki" / "admin.crt", first / "pki" / "admin.key")


@pytest.fixture
def local_cluster(tmp_path: Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    state_dir = tmp_path / "state"
    result = run("up", "--state-dir", str(state_dir))
    assert "The local control plane is up" in result.stdout
    manifest = json.loads((state_dir / "cluster.json").read_text())
    try:
        yield state_dir, manifest
    finally:
        run("down", "--state-dir", str(state_dir), check=False)


def test_up_status_down(local_cluster: tuple[Path, dict[str, Any]]) -> None:
    state_dir, manifest = local_cluster
    assert len(manifest["masters"]) == 3
    assert (state_dir / "master-1" / "pki" / "admin.key").stat().st_mode & 0o777 == 0o600
    assert (state_dir / "admin.kubeconfig").stat().st_mode & 0o777 == 0o600
    printed = run("kubeconfig", "--state-dir", str(state_dir))
    assert printed.stdout == (state_dir / "admin.kubeconfig").read_text()
    status = run("status", "--kubeconfig", str(state_dir / "admin.kubeconfig"))
    assert status.stdout.count("ready") == 3
    assert status.stdout.count("leader") >= 2  # the header line and one master
    assert (state_dir / "master-1" / "cluster-secret").stat().st_mode & 0o777 == 0o600
    # The worker joined by token runs the sample app through Podman; it answers from this host.
    assert len(manifest["workers"]) == 1
    with urllib.request.urlopen(manifest["sample_app"], timeout=5) as response:
        assert b"Hello from edgek8s" in response.read()
    tls = admin_tls(state_dir)
    api = manifest["masters"][0]["api"]
    node = http("GET", f"{api}/api/v1/nodes/worker-1", tls=tls)
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("podman://")
    pods = http("GET", f"{api}/api/v1/namespaces/default/pods?labelSelector=app%3Dhello", tls=tls)["items"]
    assert [p["spec"]["nodeName"] for p in pods] == ["worker-1"]
    assert pods[0]["status"]["phase"] == "Running"
    again = run("up", "--state-dir", str(state_dir))
    assert "already running" in again.stdout
    down = run("down", "--state-dir", str(state_dir))
    assert "stopped 3 masters and 1 workers" in down.stdout
    assert not state_dir.exists()
    for process in manifest["masters"] + manifest["workers"]:
        with pytest.raises(ProcessLookupError):
            os.kill(process["pid"], 0)
    with pytest.raises(OSError):  # the sample app's pod and its published port are gone
        urllib.request.urlopen(manifest["sample_app"], timeout=2)


def test_snapshot_save_and_restore_into_a_new_cluster(
    local_cluster: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    state_dir, manifest = local_cluster
    api = manifest["masters"][1]["api"]
    tls = admin_tls(state_dir)
    for i in range(30):
        body = {"metadata": {"name": f"keep-{i}"}, "data": {"i": str(i)}}
        http("POST", f"{api}/api/v1/namespaces/default/configmaps", body, tls)
    snapshot = tmp_path / "snap.jsonl"
    saved = run("snapshot", "save", str(snapshot), "--kubeconfig", str(state_dir / "admin.kubeconfig"))
    assert "saved" in saved.stdout
    header = json.loads(snapshot.read_text().splitlines()[0])

    raft = [f"127.0.0.1:{free_port()}" for _ in range(3)]
    apis = [free_port() for _ in range(3)]
    secret = tmp_path / "restored-secret"
    run("secret", "generate", str(secret))
    processes = []
    try:
        for i in range(3):
            data_dir = tmp_path / f"restored-{i}"
            peers = [f"--peer={p}" for p in raft if p != raft[i]]
            run("snapshot", "restore", str(snapshot), "--data-dir", str(data_dir), "--raft-address", raft[i], *peers)
            processes.append(
                subprocess.Popen(
                    [*EDGEK8S, "server", f"--name=r{i}", f"--data-dir={data_dir}", f"--raft-address={raft[i]}", *peers,
                     f"--listen=127.0.0.1:{apis[i]}", f"--cluster-secret-file={secret}"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                )
            )
        url = f"http://127.0.0.1:{apis[2]}"
        deadline = time.monotonic() + 30
        while True:
            try:
                listed = http("GET", f"{url}/api/v1/namespaces/default/configmaps")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        names = {o["metadata"]["name"] for o in listed["items"]}
        assert {f"keep-{i}" for i in range(30)} <= names
        assert int(listed["metadata"]["resourceVersion"]) >= header["rv"]
        created = http("POST", f"{url}/api/v1/namespaces/default/configmaps", {"metadata": {"name": "after"}})
        assert int(created["metadata"]["resourceVersion"]) > header["rv"]
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_restore_refuses_a_used_data_dir_and_a_cut_file(tmp_path: Path) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "raft.journal").write_bytes(b"x")
    snapshot = tmp_path / "snap.jsonl"
    snapshot.write_text(json.dumps({"format": "edgek8s-snapshot/1", "rv": 5, "masters": {}, "objects": 2}) + "\n")
    cut = run("snapshot", "restore", str(snapshot), "--data-dir", str(tmp_path / "new"),
              "--raft-address", "127.0.0.1:1", check=False)
    assert cut.returncode == 2 and "truncated" in cut.stderr
    assert not (tmp_path / "new").exists()
    snapshot.write_text(json.dumps({"format": "edgek8s-snapshot/1", "rv": 5, "masters": {}, "objects": 0}) + "\n")
    refused = run("snapshot", "restore", str(snapshot), "--data-dir", str(used), "--raft-address", "127.0.0.1:1",
                  check=False)
    assert refused.returncode == 2 and "not empty" in refused.stderr
    assert (used / "raft.journal").read_bytes() == b"x"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["server", "--raft-address", "127.0.0.1:1", "--cluster-secret-file", "/nonexistent"], "--data-dir"),
        (["server", "--data-dir", "/tmp/x", "--raft-address", "nope", "--cluster-secret-file", "/x"], "--raft-address"),
        (["server", "--data-dir", "/tmp/x", "--raft-address", "127.0.0.1:1", "--cluster-secret-file", "/nonexistent"],
         "cannot read"),
        (["server", "--data-dir", "/tmp/x", "--raft-address", "127.0.0.1:1"], "--cluster-secret-file is required"),
        (["server", "--data-dir", "/tmp/x", "--raft-address", "127.0.0.1:1", "--listen", "6443",
          "--cluster-secret-file", "/x"], "--listen"),
    ],
)
def test_bad_flags_give_one_clear_line_and_exit_2(args: list[str], message: str) -> None:
    result = run(*args, check=False, timeout=30)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
