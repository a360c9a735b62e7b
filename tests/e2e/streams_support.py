"""A worker for the kubectl stream tests: a real ``edgek8s agent`` (the kubelet over Podman, with its HTTPS
streaming endpoint) joined to the session's cluster, running pods in the Podman it starts in its data dir.

The agent gets what a joined node has: a client certificate ``system:node:<name>`` and a kubelet serving
certificate, both signed by the cluster CA. Pods are bound to it directly (``spec.nodeName``), so no
scheduler is needed; the agent runs them and reports their status. Everything is real: kubectl, the API
servers, the agent, its endpoint, Podman, runc.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgek8s._util.ports import free_port as _free_port
from edgek8s.config import PodmanConfig
from edgek8s.kubelet.podman_host import PodmanHost, remove_everything, resolve
from edgek8s.pki.certs import issue, read_pair, write_pair
from edgek8s.pki.layout import Layout
from tests.e2e.kubectl_support import Cluster, Kubectl, manifest, unique
from tests.support.agent import IMAGE, build_test_archive, random_pod_cidr

POD_START_TIMEOUT = 60.0


@dataclasses.dataclass
class Worker:
    node: str
    host: PodmanHost  # the agent's Podman (socket, storage)
    image: str
    kubectl: Kubectl
    log: Path
    archive: Path  # the test image, saved

    def podman(self, *args: str) -> str:
        """The podman CLI on the agent's storage."""
        result = subprocess.run(["podman", *args], capture_output=True, text=True, env=self.host.env(), timeout=120,
                                check=False)
        assert result.returncode == 0, f"podman {' '.join(args)}: {result.stderr}"
        return result.stdout

    def run_pod(self, ns: str, name: str, containers: dict[str, str], *, restart: str = "Always",
                volumes: list[dict[str, Any]] | None = None, phase: str | None = "Running") -> str:
        """A pod on this worker whose containers run the given shell scripts; waits for ``phase``."""
        mounts = [{"name": v["name"], "mountPath": f"/{v['name']}"} for v in volumes or []]
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
               "spec": {"nodeName": self.node, "restartPolicy": restart, "terminationGracePeriodSeconds": 1,
                        "volumes": volumes or [],
                        "containers": [{"name": c, "image": self.image, "imagePullPolicy": "Never",
                                        "command": ["sh", "-c", script], "volumeMounts": mounts}
                                       for c, script in containers.items()]}}
        self.kubectl("create", "-n", ns, "-f", "-", input=manifest(pod))
        uid = str(self.kubectl.json("get", "pod", name, "-n", ns)["metadata"]["uid"])
        if phase is not None:
            self.wait_for(ns, name, lambda p: (p.get("status") or {}).get("phase") == phase, f"phase {phase}")
        return uid

    def wait_for(self, ns: str, name: str, done: Any, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + POD_START_TIMEOUT
        while True:
            pod: dict[str, Any] = self.kubectl.json("get", "pod", name, "-n", ns)
            if done(pod):
                return pod
            if time.monotonic() > deadline:
                tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
                pytest.fail(f"pod {ns}/{name} did not reach {what}: {pod.get('status')}\nagent log:\n{tail}")
            time.sleep(0.2)


@pytest.fixture(scope="session")
def worker(edgek8s_cluster: Cluster, kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    base = tmp_path_factory.mktemp("worker")
    archive = build_test_archive(base)
    pod_cidr = random_pod_cidr()
    host = resolve(PodmanConfig(pod_cidr=pod_cidr), base / "agent")  # what the agent resolves from its flags
    agent: subprocess.Popen[bytes] | None = None
    node = unique("worker")
    try:
        first = Layout(edgek8s_cluster.state_dir / "master-1")  # `edgek8s up`'s first master holds the CA
        ca = read_pair(first.ca_cert, first.ca_key)
        write_pair(issue(ca, common_name=f"system:node:{node}", organizations=["system:nodes"], client=True),
                   base / "node.crt", base / "node.key")
        write_pair(issue(ca, common_name=f"system:node:{node}", dns_names=["localhost"], ip_addresses=["127.0.0.1"],
                         server=True), base / "kubelet.crt", base / "kubelet.key")
        kubelet_port = _free_port()
        masters = [m["api"] for m in json.loads((edgek8s_cluster.state_dir / "cluster.json").read_text())["masters"]]
        command = [
            sys.executable, "-m", "edgek8s", "agent", "--name", node, "--data-dir", str(base / "agent"),
            *(f"--server={url}" for url in masters), "--ca-file", str(first.ca_cert),
            "--cert-file", str(base / "node.crt"), "--key-file", str(base / "node.key"), "--node-ip", "127.0.0.1",
            "--kubelet-port", str(kubelet_port), "--pod-cidr", pod_cidr, "--backoff-initial", "0.2",
            "--backoff-max", "1", "--relist-period", "0.5", "--tls-cert-file", str(base / "kubelet.crt"),
            "--tls-private-key-file", str(base / "kubelet.key"),
        ]
        # Tainted before the agent adopts it: the scheduler must not place other tests' pods here (their images
        # would be pulled from a registry); this worker's pods are bound by name and do not need to tolerate it.
        kubectl("create", "-f", "-", input=manifest({
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": node},
            "spec": {"taints": [{"key": "edgek8s.io/e2e-streams-only", "effect": "NoSchedule"}]}}))
        log = base / "agent.log"
        with log.open("wb") as sink:
            agent = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + POD_START_TIMEOUT
        port_path = "jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}"
        while kubectl("get", "node", node, "-o", port_path).stdout != str(kubelet_port):  # adopted, status written
            registering = agent.poll() is None and time.monotonic() < deadline
            assert registering, f"the agent did not register:\n{log.read_text()}"
            time.sleep(0.2)
        worker = Worker(node, host, IMAGE, kubectl, log, archive)
        worker.podman("load", "--quiet", "--input", str(archive))
        yield worker
    finally:
        if agent is not None:
            agent.terminate()
            try:
                agent.wait(timeout=15)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait()
        kubectl("delete", "node", node, "--ignore-not-found", "--wait=false", check=False)
        asyncio.run(remove_everything(host))
