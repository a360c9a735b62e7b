"""A worker for the kubectl stream tests: a private Podman, the kubelet's streaming endpoint over it, and
a registered Node pointing at that endpoint (mTLS with the cluster CA, as a joined agent would have).

Until the agent runs pods, ``run_pod`` plays the agent's part: it creates the Pod bound to the node,
starts its containers in Podman with the agent's labels (pod uid, container name), and reports the pod
Running. Everything else is real: kubectl, the API servers, the kubelet endpoint, Podman, runc.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgek8s.kubelet.runtime import LABEL_CONTAINER_NAME, LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_POD_UID
from edgek8s.pki.certs import issue, read_pair, write_pair
from tests.e2e.kubectl_support import Cluster, Kubectl, manifest, unique
from tests.support.podman import PrivatePodman


@dataclasses.dataclass
class Worker:
    node: str
    podman: PrivatePodman
    image: str
    kubectl: Kubectl

    def run_pod(self, ns: str, name: str, containers: dict[str, str], *, running: bool = True) -> str:
        """A pod on this worker whose containers run the given shell scripts; returns its uid."""
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
               "spec": {"nodeName": self.node,
                        "containers": [{"name": c, "image": self.image} for c in containers]}}
        self.kubectl("create", "-n", ns, "-f", "-", input=manifest(pod))
        uid = str(self.kubectl.json("get", "pod", name, "-n", ns)["metadata"]["uid"])
        for container, script in containers.items():
            self.start_container(ns, name, uid, container, script)
        if running:
            status = {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
            self.kubectl("patch", "pod", name, "-n", ns, "--subresource=status", "--type=merge",
                         "-p", json.dumps(status))
        return uid

    def start_container(self, ns: str, pod: str, uid: str, container: str, script: str) -> str:
        labels = {LABEL_POD_UID: uid, LABEL_POD_NAME: pod, LABEL_POD_NAMESPACE: ns, LABEL_CONTAINER_NAME: container}
        flags = [f"--label={key}={value}" for key, value in labels.items()]
        return self.podman.run("run", "-d", "--network=none", *flags, self.image, "sh", "-c", script).strip()


@pytest.fixture(scope="session")
def worker(edgek8s_cluster: Cluster, kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    base = tmp_path_factory.mktemp("worker")
    podman = PrivatePodman(Path("/tmp") / f"edgek8s-podman-{uuid.uuid4().hex[:8]}")  # a short socket path
    podman.start()
    endpoint: subprocess.Popen[str] | None = None
    node = unique("worker")
    try:
        image = podman.build_busybox()
        pki = edgek8s_cluster.state_dir / "pki"
        serving = issue(read_pair(pki / "ca.crt", pki / "ca.key"), common_name=f"system:node:{node}",
                        organizations=["system:nodes"], dns_names=["localhost"], ip_addresses=["127.0.0.1"],
                        server=True)
        write_pair(serving, base / "kubelet.crt", base / "kubelet.key")
        endpoint = subprocess.Popen(
            [sys.executable, "-m", "tests.support.kubelet_endpoint", "--cert", str(base / "kubelet.crt"),
             "--key", str(base / "kubelet.key"), "--ca", str(pki / "ca.crt"), "--podman-socket", str(podman.socket)],
            stdout=subprocess.PIPE, stderr=open(base / "kubelet.log", "w"), text=True)  # noqa: SIM115
        assert endpoint.stdout is not None
        ready = endpoint.stdout.readline().split()
        assert ready[:1] == ["ready"], f"the kubelet endpoint did not start: {(base / 'kubelet.log').read_text()}"
        resources = {"cpu": "2", "memory": "8Gi", "pods": "110"}
        kubectl("create", "-f", "-", input=manifest({
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": node, "labels": {"kubernetes.io/hostname": node}},
            "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": int(ready[1])}},
                       "capacity": resources, "allocatable": resources,
                       "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}))
        yield Worker(node, podman, image, kubectl)
    finally:
        kubectl("delete", "node", node, "--ignore-not-found", "--wait=false", check=False)
        if endpoint is not None:
            endpoint.terminate()
            endpoint.wait(timeout=10)
        podman.stop()
