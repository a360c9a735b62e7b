"""Admin kubeconfig files, usable by kubectl and the official Python client as they are."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

from edgek8s.pki.certs import CertPair
from edgek8s.pki.layout import write_private


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def render_kubeconfig(*, server: str, ca_pem: bytes, client: CertPair, cluster: str = "edgek8s",
                      user: str = "admin") -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)}}],
        "users": [{"name": user, "user": {"client-certificate-data": _b64(client.cert_pem),
                                          "client-key-data": _b64(client.key_pem)}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user, "namespace": "default"}}],
        "current-context": cluster,
    }
    return str(yaml.safe_dump(config, sort_keys=False))


def write_kubeconfig(path: Path, text: str) -> None:
    write_private(path, text.encode())


def render_file_kubeconfig(*, server: str, ca_file: Path, cert_file: Path, key_file: Path,
                           user: str = "node") -> str:
    """A kubeconfig that names its credential files, so a renewal that rewrites them needs no edit here."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "edgek8s", "cluster": {"server": server, "certificate-authority": str(ca_file)}}],
        "users": [{"name": user, "user": {"client-certificate": str(cert_file), "client-key": str(key_file)}}],
        "contexts": [{"name": "edgek8s", "context": {"cluster": "edgek8s", "user": user}}],
        "current-context": "edgek8s",
    }
    return str(yaml.safe_dump(config, sort_keys=False))


def refresh_client_credentials(path: Path, client: CertPair) -> None:
    """Put a renewed client pair into a kubeconfig that embeds its credentials; the rest stays as it is."""
    config = yaml.safe_load(path.read_text())
    for entry in config.get("users") or ():
        user = entry.get("user") or {}
        if "client-certificate-data" in user:
            user["client-certificate-data"] = _b64(client.cert_pem)
            user["client-key-data"] = _b64(client.key_pem)
    write_kubeconfig(path, str(yaml.safe_dump(config, sort_keys=False)))
