"""Secure cluster formation with real processes, real TLS, real mDNS on loopback and the real kubectl.

A master made with ``edgek8s server --cluster-init``; workers and masters join with only a token (mDNS
finds the master); a rogue master advertising the same service with another CA is refused without
ever seeing the token; kubectl with no certificate, a foreign-CA certificate or an expired one prints
Unauthorized at once; one node cannot touch another's Node; expired and deleted tokens are refused; a
master joined by token takes part in Raft and keeps the cluster going after the first master dies.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from edgek8s.pki.certs import client_tls_context, issue, new_ca, read_pair
from tests.support.processes import free_ports

EDGEK8S = [sys.executable, "-m", "edgek8s"]
MDNS = ["--mdns-interface", "127.0.0.1"]


@dataclass
class Procs:
    base: Path
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.base / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
        process = subprocess.Popen([*EDGEK8S, *args], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.running[name] = process
        return process

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.running.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        process.wait(timeout=15)

    def log(self, name: str) -> str:
        return (self.base / f"{name}.log").read_text(errors="replace")


def run(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*EDGEK8S, *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def kubectl(kubeconfig: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = {"KUBECONFIG": str(kubeconfig), "HOME": str(kubeconfig.parent), "PATH": "/usr/bin:/bin"}
    return subprocess.run(["kubectl", *args], capture_output=True, text=True, env=env, timeout=timeout, check=False)


def wait_ready(url: str, ca: Path, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), urllib.request.urlopen(
            url + "/readyz", timeout=2, context=client_tls_context(ca)
        ) as response:
            if response.status == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready")


@dataclass
class Master:
    name: str
    config_dir: Path
    raft: str
    url: str

    @property
    def admin(self) -> Path:
        return self.config_dir / "admin.kubeconfig"


def init_master(procs: Procs, name: str) -> Master:
    raft, api = free_ports(2)
    config_dir = procs.base / name
    procs.start(name, "server", "--cluster-init", "--config-dir", str(config_dir), "--name", name,
                f"--raft-address=127.0.0.1:{raft}", f"--listen=127.0.0.1:{api}", "--advertise-address=127.0.0.1",
                *MDNS)
    master = Master(name, config_dir, f"127.0.0.1:{raft}", f"https://127.0.0.1:{api}")
    deadline = time.monotonic() + 20
    while not (config_dir / "ca.crt").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    wait_ready(master.url, config_dir / "ca.crt")
    return master


@pytest.fixture(scope="module")
def procs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Procs]:
    group = Procs(tmp_path_factory.mktemp("join"))
    try:
        yield group
    finally:
        for name in list(group.running):
            group.kill(name, signal.SIGTERM)


@pytest.fixture(scope="module")
def first(procs: Procs) -> Master:
    return init_master(procs, "m1")


def token(master: Master, *args: str) -> str:
    return run("token", "create", "--config-dir", str(master.config_dir), *args).stdout.strip()


def join(procs: Procs, name: str, tok: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run("join", "--token", tok, "--name", name, "--config-dir", str(procs.base / name),
               "--data-dir", str(procs.base / name / "data"), "--browse-timeout", "2", *MDNS, *args, check=check)


def test_cluster_init_layout_and_certs_check(first: Master) -> None:
    for path in (first.config_dir, first.config_dir / "pki"):
        assert oct(path.stat().st_mode & 0o777) == "0o700"
    for key in ("pki/ca.key", "pki/server.key", "pki/admin.key", "cluster-secret", "admin.kubeconfig"):
        assert oct((first.config_dir / key).stat().st_mode & 0o777) == "0o600", key
    unit = (first.config_dir / "edgek8s-server.service").read_text()
    assert f"server --config-dir {first.config_dir} --data-dir" in unit  # restarts without --cluster-init
    check = run("certs", "check", "--config-dir", str(first.config_dir)).stdout
    assert "serving" in check and "admin" in check and "EXPIRED" not in check
    printed = run("kubeconfig", "--config-dir", str(first.config_dir)).stdout
    assert yaml.safe_load(printed)["clusters"][0]["cluster"]["server"] == first.url


def test_worker_joins_with_only_a_token_found_by_mdns(procs: Procs, first: Master) -> None:
    tok = token(first)
    assert tok.startswith("EK10") and "::" in tok
    listed = run("token", "list", "--config-dir", str(first.config_dir)).stdout
    assert tok.split("::")[1].split(".")[0] in listed and tok.split(".")[-1] not in listed
    result = join(procs, "pi-1", tok)
    layout = procs.base / "pi-1"
    assert "joined as pi-1" in result.stdout
    assert json.loads((layout / "node.json").read_text()) == {"nodeName": "pi-1", "role": "worker",
                                                                "servers": [first.url]}
    assert oct((layout / "pki" / "node.key").stat().st_mode & 0o777) == "0o600"
    unit = (layout / "edgek8s-agent.service").read_text()
    for flag in (f"--ca-file={layout / 'ca.crt'}", f"--cert-file={layout / 'pki' / 'node.crt'}",
                 f"--key-file={layout / 'pki' / 'node.key'}", "--name=pi-1", f"--server={first.url}"):
        assert flag in unit
    kubeconfig = layout / "kubelet.kubeconfig"
    assert kubectl(kubeconfig, "get", "nodes").returncode == 0
    join(procs, "pi-2", tok)
    for name in ("pi-1", "pi-2"):
        node = f"apiVersion: v1\nkind: Node\nmetadata: {{name: {name}}}\n"
        created = subprocess.run(["kubectl", "apply", "-f", "-"], input=node, capture_output=True, text=True,
                                 env={"KUBECONFIG": str(procs.base / name / "kubelet.kubeconfig"),
                                      "HOME": str(procs.base), "PATH": "/usr/bin:/bin"}, timeout=30, check=False)
        assert created.returncode == 0, created.stderr
    hijack = kubectl(kubeconfig, "label", "node", "pi-2", "stolen=yes")
    assert hijack.returncode != 0 and "Forbidden" in hijack.stderr
    delete = kubectl(kubeconfig, "delete", "node", "pi-2")
    assert delete.returncode != 0 and "Forbidden" in delete.stderr
    assert kubectl(kubeconfig, "label", "node", "pi-1", "mine=yes").returncode == 0
    pods = kubectl(kubeconfig, "get", "pods", "-A")
    assert pods.returncode != 0 and "Forbidden" in pods.stderr


def test_rogue_mdns_master_with_another_ca_is_refused(procs: Procs, first: Master) -> None:
    rogue = init_master(procs, "rogue")
    tok = token(first)
    # Only the rogue is asked: the token's CA pin fails, nothing is sent, the join fails.
    result = join(procs, "pi-rogue", tok, "--server", rogue.url, check=False)
    assert result.returncode != 0 and "another cluster's CA" in result.stderr
    assert "does not match the join token's CA hash" in result.stderr
    # Both advertise on mDNS, and a liar claims the real CA hash for the rogue (its name sorts first, so
    # the joiner asks it first): the pin refuses it, the real master is used, the rogue never sees the token.
    pin = "sha256:" + tok.removeprefix("EK10").split("::")[0]
    liar = subprocess.Popen([sys.executable, "-m", "tests.support.mdns_liar", "--name", "a-rogue", "--address",
                             "127.0.0.1", "--port", rogue.url.rsplit(":", 1)[1], "--ca-hash", pin,
                             "--interface", "127.0.0.1"], stdout=subprocess.PIPE)
    try:
        assert liar.stdout is not None and liar.stdout.readline() == b"advertising\n"
        result = join(procs, "pi-3", tok)
    finally:
        liar.terminate()
        liar.wait(timeout=10)
    assert "joined as pi-3" in result.stdout
    assert f"refusing {rogue.url}: its CA does not match the join token's CA hash" in result.stderr
    assert "rejected a bearer token" not in procs.log("rogue")
    assert not (procs.base / "pi-rogue" / "pki" / "node.crt").exists()
    procs.kill("rogue", signal.SIGTERM)


def _kubeconfig_with(admin: Path, target: Path, cert_pem: bytes, key_pem: bytes) -> Path:
    config = yaml.safe_load(admin.read_text())
    config["users"][0]["user"] = {"client-certificate-data": base64.b64encode(cert_pem).decode(),
                                  "client-key-data": base64.b64encode(key_pem).decode()}
    target.write_text(yaml.safe_dump(config))
    return target


def test_kubectl_prints_unauthorized_quickly_for_foreign_and_expired_certificates(procs: Procs, first: Master) -> None:
    foreign = issue(new_ca(), common_name="admin", organizations=["system:masters"], client=True)
    ca = read_pair(first.config_dir / "ca.crt", first.config_dir / "pki" / "ca.key")
    import datetime

    expired = issue(ca, common_name="admin", organizations=["system:masters"], client=True,
                    lifetime=datetime.timedelta(seconds=-1))
    for label, pair in (("foreign", foreign), ("expired", expired)):
        kubeconfig = _kubeconfig_with(first.admin, procs.base / f"{label}.kubeconfig", pair.cert_pem, pair.key_pem)
        started = time.monotonic()
        result = kubectl(kubeconfig, "get", "namespaces")
        elapsed = time.monotonic() - started
        assert result.returncode != 0
        assert "error: You must be logged in to the server (Unauthorized)" in result.stderr, (label, result.stderr)
        assert elapsed < 10, (label, elapsed)
    config = yaml.safe_load(first.admin.read_text())
    config["users"][0]["user"] = {"token": "abcdef.0123456789abcdef"}  # no certificate at all
    (procs.base / "none.kubeconfig").write_text(yaml.safe_dump(config))
    result = kubectl(procs.base / "none.kubeconfig", "get", "namespaces")
    assert "Unauthorized" in result.stderr


def test_expired_and_deleted_tokens_are_refused(procs: Procs, first: Master) -> None:
    short = token(first, "--ttl", "1s")
    time.sleep(1.5)
    result = join(procs, "pi-late", short, "--server", first.url, check=False)
    assert result.returncode != 0 and "Unauthorized" in result.stderr
    doomed = token(first)
    run("token", "delete", "--config-dir", str(first.config_dir), doomed.split("::")[1].split(".")[0])
    result = join(procs, "pi-deleted", doomed, "--server", first.url, check=False)
    assert result.returncode != 0 and "Unauthorized" in result.stderr
    worker_only = token(first)
    result = join(procs, "m-sneaky", worker_only, "--control-plane", "--raft-address", "127.0.0.1:1",
                  "--server", first.url, check=False)
    assert result.returncode != 0 and "only join workers" in result.stderr


def test_masters_joined_by_token_survive_the_first_masters_death(procs: Procs, first: Master) -> None:
    joined = []
    for name in ("m2", "m3"):
        raft, api = free_ports(2)
        tok = token(first, "--role", "master")
        procs.start(name, "join", "--token", tok, "--control-plane", "--name", name, "--config-dir",
                    str(procs.base / name), "--data-dir", str(procs.base / name / "data"),
                    f"--raft-address=127.0.0.1:{raft}", f"--listen=127.0.0.1:{api}",
                    "--advertise-address=127.0.0.1", "--browse-timeout=2", *MDNS, "--foreground")
        master = Master(name, procs.base / name, f"127.0.0.1:{raft}", f"https://127.0.0.1:{api}")
        deadline = time.monotonic() + 30
        while not (master.config_dir / "ca.crt").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        wait_ready(master.url, master.config_dir / "ca.crt")
        settings = json.loads((master.config_dir / "server.json").read_text())
        assert settings["mdnsInterfaces"] == ["127.0.0.1"]  # the started master stays off other interfaces
        joined.append(master)
    status = run("status", "--kubeconfig", str(first.admin)).stdout
    for master in (first, *joined):
        assert master.raft in status.splitlines()[0]
    procs.kill("m1")
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: after-m1}\ndata: {a: b}\n"
    deadline = time.monotonic() + 30
    while True:
        applied = subprocess.run(["kubectl", "apply", "-f", "-"], input=cm, capture_output=True, text=True,
                                 env={"KUBECONFIG": str(joined[0].admin), "HOME": str(procs.base),
                                      "PATH": "/usr/bin:/bin"}, timeout=30, check=False)
        if applied.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert applied.returncode == 0, applied.stderr
    assert kubectl(joined[1].admin, "get", "configmap", "after-m1").returncode == 0
    # The joined master also signs joins now that the first one is gone.
    worker = run("token", "create", "--config-dir", str(joined[0].config_dir)).stdout.strip()
    assert "joined as pi-9" in join(procs, "pi-9", worker, "--server", joined[1].url).stdout
