"""``edgek8s up`` / ``edgek8s down``: a local HA control plane of N masters on this machine.

Each master is an ordinary ``edgek8s server`` process with its own data dir, Raft port and API port,
so moving each into its own simulated host later changes only how it is launched. Everything lives
under one state dir: ``cluster.json`` (what was started), ``secret``, and ``<name>/{data,log,pid}``;
``down`` stops every process it lists and removes the state dir.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from edgek8s.config import KUBELET_CLIENT_NAME
from edgek8s.pki.certs import client_tls_context, issue, new_ca, read_pair, write_pair
from edgek8s.server.kubeconfig import render_kubeconfig, write_kubeconfig
from edgek8s.server.secrets import generate_secret_file

READY_TIMEOUT = 60.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ready(api_url: str, ca_file: Path) -> bool:
    try:
        with urllib.request.urlopen(api_url + "/readyz", timeout=2, context=client_tls_context(ca_file)) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _read_manifest(state_dir: Path) -> dict[str, Any] | None:
    try:
        manifest: dict[str, Any] = json.loads((state_dir / "cluster.json").read_text())
        return manifest
    except (OSError, ValueError):
        return None


def kubeconfig_path(state_dir: Path) -> Path:
    return state_dir / "admin.kubeconfig"


def _make_pki(state_dir: Path, names: list[str]) -> None:
    """Cluster CA, one serving certificate per master (127.0.0.1, localhost), an admin client certificate."""
    pki = state_dir / "pki"
    ca = new_ca("edgek8s-local-ca")
    write_pair(ca, pki / "ca.crt", pki / "ca.key")
    for name in names:
        serving = issue(ca, common_name=name, dns_names=["localhost", name, "kubernetes.default.svc"],
                        ip_addresses=["127.0.0.1"], server=True)
        write_pair(serving, pki / f"{name}.crt", pki / f"{name}.key")
    admin = issue(ca, common_name="admin", organizations=["system:masters"], client=True)
    write_pair(admin, pki / "admin.crt", pki / "admin.key")
    # The masters' identity towards kubelets (logs, exec, port-forward, metrics); kubelets accept only it.
    kubelet_client = issue(ca, common_name=KUBELET_CLIENT_NAME, organizations=["system:masters"], client=True)
    write_pair(kubelet_client, pki / "apiserver-kubelet-client.crt", pki / "apiserver-kubelet-client.key")


def _step(message: str) -> None:
    print(f"==> {message}", flush=True)


def up(state_dir: Path, *, masters: int = 3) -> int:
    if masters < 1:
        print("edgek8s up: --masters must be at least 1", file=sys.stderr)
        return 2
    existing = _read_manifest(state_dir)
    if existing and all(_alive(m["pid"]) for m in existing["masters"]):
        _step(f"a local cluster is already running from {state_dir}")
        _print_next_steps(existing)
        return 0
    if existing:
        _step("cleaning up a previous local cluster that is no longer running")
        down(state_dir, quiet=True)
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    secret = state_dir / "secret"
    _step(f"generating the cluster secret in {secret}")
    generate_secret_file(secret)
    nodes = [
        {"name": f"master-{i}", "raft": f"127.0.0.1:{_free_port()}", "api_port": _free_port()}
        for i in range(1, masters + 1)
    ]
    _step("creating the cluster CA, serving certificates and an admin client certificate")
    _make_pki(state_dir, [str(node["name"]) for node in nodes])
    pki = state_dir / "pki"
    manifest: dict[str, Any] = {"state_dir": str(state_dir), "masters": []}
    for node in nodes:
        home = state_dir / str(node["name"])
        home.mkdir(exist_ok=True, mode=0o700)
        peers = [f"--peer={other['raft']}" for other in nodes if other is not node]
        command = [
            sys.executable, "-m", "edgek8s", "server",
            f"--name={node['name']}", f"--data-dir={home / 'data'}", f"--raft-address={node['raft']}",
            *peers, f"--listen=127.0.0.1:{node['api_port']}", f"--cluster-secret-file={secret}",
            f"--tls-cert-file={pki / (str(node['name']) + '.crt')}",
            f"--tls-private-key-file={pki / (str(node['name']) + '.key')}", f"--client-ca-file={pki / 'ca.crt'}",
            f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
        ]
        log = open(home / "log", "ab")  # noqa: SIM115 - handed to the child, closed below
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        (home / "pid").write_text(str(process.pid))
        api_url = f"https://127.0.0.1:{node['api_port']}"
        manifest["masters"].append(
            {"name": node["name"], "pid": process.pid, "raft": node["raft"], "api": api_url, "log": str(home / "log")}
        )
        _step(f"started {node['name']} (pid {process.pid}) raft {node['raft']} api {api_url}")
    (state_dir / "cluster.json").write_text(json.dumps(manifest, indent=2))
    admin = read_pair(pki / "admin.crt", pki / "admin.key")
    write_kubeconfig(
        kubeconfig_path(state_dir),
        render_kubeconfig(server=manifest["masters"][0]["api"], ca_pem=(pki / "ca.crt").read_bytes(), client=admin),
    )
    _step("waiting for the masters to elect a leader and become ready")
    deadline = time.monotonic() + READY_TIMEOUT
    pending = list(manifest["masters"])
    while pending and time.monotonic() < deadline:
        for master in list(pending):
            if not _alive(master["pid"]):
                print(f"edgek8s up: {master['name']} exited; see {master['log']}", file=sys.stderr)
                down(state_dir, quiet=True)
                return 1
            if _ready(master["api"], pki / "ca.crt"):
                _step(f"{master['name']} is ready")
                pending.remove(master)
        time.sleep(0.2)
    if pending:
        names = ", ".join(m["name"] for m in pending)
        print(f"edgek8s up: {names} not ready after {READY_TIMEOUT:.0f}s; logs are in {state_dir}", file=sys.stderr)
        return 1
    _print_next_steps(manifest)
    return 0


def _command_name() -> str:
    """How to call edgek8s again: bare if it is on PATH, else the path next to this Python (a venv)."""
    beside = Path(sys.executable).parent / "edgek8s"
    if shutil.which("edgek8s") == str(beside) or not beside.exists():
        return "edgek8s"
    return str(beside)


def _print_next_steps(manifest: dict[str, Any]) -> None:
    state_dir = Path(manifest["state_dir"])
    edgek8s = _command_name()
    kubeconfig = kubeconfig_path(state_dir)
    print()
    print(f"The local control plane is up. Admin kubeconfig: {kubeconfig}")
    print("Try:")
    print(f"  export KUBECONFIG={kubeconfig}")
    print("  kubectl get namespaces")
    print("  kubectl apply -f - <<EOF")
    print("apiVersion: v1")
    print("kind: ConfigMap")
    print("metadata: {name: hello}")
    print("data: {greeting: hi}")
    print("EOF")
    print("  kubectl get configmaps --watch        (in another terminal; then: kubectl label cm hello tier=edge)")
    print(f"  {edgek8s} status --kubeconfig {kubeconfig}")
    print(f"  {edgek8s} down --state-dir {state_dir}")


def down(state_dir: Path, *, quiet: bool = False) -> int:
    manifest = _read_manifest(state_dir)
    pids = [m["pid"] for m in manifest["masters"]] if manifest else []
    for pid in pids:
        if _alive(pid):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
    if state_dir.exists():
        shutil.rmtree(state_dir)
    if not quiet:
        print(f"stopped {len(pids)} masters and removed {state_dir}")
    return 0
