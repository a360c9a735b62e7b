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


def _ready(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(api_url + "/readyz", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _read_manifest(state_dir: Path) -> dict[str, Any] | None:
    try:
        manifest: dict[str, Any] = json.loads((state_dir / "cluster.json").read_text())
        return manifest
    except (OSError, ValueError):
        return None


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
    manifest: dict[str, Any] = {"state_dir": str(state_dir), "masters": []}
    for node in nodes:
        home = state_dir / str(node["name"])
        home.mkdir(exist_ok=True, mode=0o700)
        peers = [f"--peer={other['raft']}" for other in nodes if other is not node]
        command = [
            sys.executable, "-m", "edgek8s", "server",
            f"--name={node['name']}", f"--data-dir={home / 'data'}", f"--raft-address={node['raft']}",
            *peers, f"--listen=127.0.0.1:{node['api_port']}", f"--cluster-secret-file={secret}",
        ]
        log = open(home / "log", "ab")  # noqa: SIM115 - handed to the child, closed below
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        (home / "pid").write_text(str(process.pid))
        api_url = f"http://127.0.0.1:{node['api_port']}"
        manifest["masters"].append(
            {"name": node["name"], "pid": process.pid, "raft": node["raft"], "api": api_url, "log": str(home / "log")}
        )
        _step(f"started {node['name']} (pid {process.pid}) raft {node['raft']} api {api_url}")
    (state_dir / "cluster.json").write_text(json.dumps(manifest, indent=2))
    _step("waiting for the masters to elect a leader and become ready")
    deadline = time.monotonic() + READY_TIMEOUT
    pending = list(manifest["masters"])
    while pending and time.monotonic() < deadline:
        for master in list(pending):
            if not _alive(master["pid"]):
                print(f"edgek8s up: {master['name']} exited; see {master['log']}", file=sys.stderr)
                down(state_dir, quiet=True)
                return 1
            if _ready(master["api"]):
                _step(f"{master['name']} is ready")
                pending.remove(master)
        time.sleep(0.2)
    if pending:
        names = ", ".join(m["name"] for m in pending)
        print(f"edgek8s up: {names} not ready after {READY_TIMEOUT:.0f}s; logs are in {state_dir}", file=sys.stderr)
        return 1
    _print_next_steps(manifest)
    return 0


def _print_next_steps(manifest: dict[str, Any]) -> None:
    first = manifest["masters"][0]["api"]
    print()
    print("The local control plane is up. Try:")
    print(f"  edgek8s status --server {first}")
    print(f"  curl -s {first}/api/v1/namespaces")
    print(
        f"  curl -s -X POST {first}/api/v1/namespaces/default/configmaps -H 'Content-Type: application/json' "
        """-d '{"metadata":{"name":"hello"},"data":{"greeting":"hi"}}'"""
    )
    print(f"  curl -s '{manifest['masters'][-1]['api']}/api/v1/namespaces/default/configmaps?watch=1'")
    print(f"  edgek8s down --state-dir {manifest['state_dir']}")


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
