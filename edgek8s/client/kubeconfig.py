"""Read a kubeconfig (the current context's server and TLS credentials) for edgek8s's own clients."""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from edgek8s.model import errors


@dataclass(frozen=True, slots=True)
class Endpoint:
    server: str
    ssl_context: ssl.SSLContext | None


def _data(section: dict[str, Any], key: str, base: Path) -> bytes | None:
    if section.get(f"{key}-data"):
        return base64.b64decode(section[f"{key}-data"])
    if section.get(key):
        return (base / str(section[key])).read_bytes()
    return None


def load_kubeconfig(path: Path) -> Endpoint:
    try:
        config = yaml.safe_load(path.read_text())
        context_name = config["current-context"]
        context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
    except (OSError, yaml.YAMLError, KeyError, StopIteration, TypeError) as exc:
        raise errors.BadRequest(f"cannot use kubeconfig {path}: {type(exc).__name__}: {exc}") from None
    server = str(cluster["server"])
    if not server.startswith("https://"):
        return Endpoint(server, None)
    base = path.parent
    ca = _data(cluster, "certificate-authority", base)
    context_ssl = ssl.create_default_context(cadata=ca.decode() if ca else None)
    cert, key = _data(user, "client-certificate", base), _data(user, "client-key", base)
    if cert and key:
        # ssl only loads certificate chains from files: a private temporary directory, removed at once.
        with tempfile.TemporaryDirectory() as tmp:
            os.chmod(tmp, 0o700)
            cert_file, key_file = Path(tmp) / "c.pem", Path(tmp) / "k.pem"
            cert_file.write_bytes(cert)
            key_file.write_bytes(key)
            context_ssl.load_cert_chain(cert_file, key_file)
    return Endpoint(server, context_ssl)
