"""Where a host's edgek8s credentials and settings live (default ``/etc/edgek8s``, overridable).

Shared by ``edgek8s server --cluster-init``, ``edgek8s join`` (writer), ``edgek8s server`` and
``edgek8s agent`` (readers) and certificate renewal (rewriter); docs/joining.md describes it for
operators. The directory and ``pki/`` are 0700; every private key and the cluster secret 0600.

    <dir>/node.json            {"nodeName", "role": "worker"|"master", "servers": [API URLs]}
    <dir>/ca.crt               the cluster CA bundle
    <dir>/pki/node.crt|key     this host's client certificate (CN=system:node:<name>, O=system:nodes)
    <dir>/pki/kubelet.crt|key  the serving certificate of this host's kubelet endpoint (same CN, with the
                               node name and addresses as SANs; the API servers verify it)
    <dir>/kubelet.kubeconfig   kubeconfig pointing at the node certificate, key and CA by path
  masters only:
    <dir>/server.json          {"name", "raftAddress", "peers", "listen", "joinServers", "mdnsInterfaces"}
    <dir>/cluster-secret       hex secret that authenticates Raft traffic
    <dir>/pki/ca.key           the CA key (masters sign join and renewal requests)
    <dir>/pki/server.crt|key   the API serving certificate
    <dir>/pki/admin.crt|key    an admin client certificate (system:masters)
    <dir>/pki/kubelet-client.crt|key  the API server's client certificate towards kubelets
                               (CN=kube-apiserver-kubelet-client; kubelets accept no other)
    <dir>/admin.kubeconfig     what ``edgek8s kubeconfig`` prints

Renewal replaces a certificate and its key with one rename each (key first, written next to it), so a
reader never sees a torn file; a reader that loads the pair between the two renames gets a mismatch
error from ``load_cert_chain`` and retries.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_DIR = Path("/etc/edgek8s")


@dataclass(frozen=True, slots=True)
class ClientFiles:
    """Where a client's CA bundle, certificate and key live (what ``edgek8s agent`` takes as flags)."""

    ca: Path
    cert: Path
    key: Path


@dataclass(frozen=True, slots=True)
class Layout:
    root: Path

    @property
    def node_json(self) -> Path:
        return self.root / "node.json"

    @property
    def server_json(self) -> Path:
        return self.root / "server.json"

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.root / "pki" / "ca.key"

    @property
    def node_cert(self) -> Path:
        return self.root / "pki" / "node.crt"

    @property
    def node_key(self) -> Path:
        return self.root / "pki" / "node.key"

    @property
    def serving_cert(self) -> Path:
        return self.root / "pki" / "server.crt"

    @property
    def serving_key(self) -> Path:
        return self.root / "pki" / "server.key"

    @property
    def admin_cert(self) -> Path:
        return self.root / "pki" / "admin.crt"

    @property
    def admin_key(self) -> Path:
        return self.root / "pki" / "admin.key"

    @property
    def kubelet_serving_cert(self) -> Path:
        return self.root / "pki" / "kubelet.crt"

    @property
    def kubelet_serving_key(self) -> Path:
        return self.root / "pki" / "kubelet.key"

    @property
    def kubelet_client_cert(self) -> Path:
        return self.root / "pki" / "kubelet-client.crt"

    @property
    def kubelet_client_key(self) -> Path:
        return self.root / "pki" / "kubelet-client.key"

    @property
    def cluster_secret(self) -> Path:
        return self.root / "cluster-secret"

    @property
    def kubelet_kubeconfig(self) -> Path:
        return self.root / "kubelet.kubeconfig"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.root / "admin.kubeconfig"

    @property
    def client_files(self) -> ClientFiles:
        return ClientFiles(self.ca_cert, self.node_cert, self.node_key)

    def read_json(self, path: Path) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(path.read_text())
        return data


def write_private(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename), creating 0700 parents."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def write_json(path: Path, data: dict[str, Any]) -> None:
    write_private(path, (json.dumps(data, indent=2) + "\n").encode(), mode=0o644)
