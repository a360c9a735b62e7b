"""The cluster secret: 32 random bytes, hex-encoded, in a 0600 file inside a 0700 directory."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from edgek8s.config import ConfigError


def generate_secret_file(path: Path) -> None:
    if path.exists():
        raise ConfigError(f"{path} exists already; remove it first if you really want a new cluster secret")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
