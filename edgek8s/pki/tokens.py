"""Join tokens: ``EK10<ca hash>::<id>.<secret>``, and how they are kept in the store.

The format follows k3s (``K10<hash>::...``) and kubeadm (``[a-z0-9]{6}.[a-z0-9]{16}`` bootstrap tokens with
``--discovery-token-ca-cert-hash``): the part before ``::`` is the SHA-256 of the cluster CA's public
key, so a joiner can pin the CA before it trusts any master it found; only ``<id>.<secret>`` is ever
sent to a master (as ``Authorization: Bearer``), and only after TLS was verified against the pinned CA.

Invariants: the store never holds a secret, only its SHA-256 (the secret has ~82 bits of entropy, so
a plain hash is enough, and guessing is rate-limited by the API); comparisons are constant-time; a
token past its expiration authenticates nothing.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass
from typing import Any

PREFIX = "EK10"
NAMESPACE = "kube-system"
SECRET_TYPE = "bootstrap.kubernetes.io/token"
ROLES = ("worker", "master")
GROUP_PREFIX = "system:bootstrappers:edgek8s:"
_ALPHABET = string.ascii_lowercase + string.digits
_BEARER = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
_TOKEN = re.compile(r"^EK10([0-9a-f]{64})::([a-z0-9]{6})\.([a-z0-9]{16})$")


@dataclass(frozen=True, slots=True)
class JoinToken:
    ca_hash: str  # sha256:<hex>
    token_id: str
    secret: str

    def __str__(self) -> str:
        return f"{PREFIX}{self.ca_hash.removeprefix('sha256:')}::{self.bearer}"

    @property
    def bearer(self) -> str:
        return f"{self.token_id}.{self.secret}"


def new_token(ca_hash: str) -> JoinToken:
    def pick(n: int) -> str:
        return "".join(secrets.choice(_ALPHABET) for _ in range(n))

    return JoinToken(ca_hash, pick(6), pick(16))


def parse_token(text: str) -> JoinToken:
    match = _TOKEN.match(text.strip())
    if match is None:
        raise ValueError("a join token looks like EK10<64 hex digits>::<6 chars>.<16 chars>")
    return JoinToken("sha256:" + match.group(1), match.group(2), match.group(3))


def parse_bearer(value: str) -> tuple[str, str] | None:
    """(token id, secret) from an ``Authorization: Bearer`` value, or None if it is not a join token."""
    match = _BEARER.match(value)
    return (match.group(1), match.group(2)) if match else None


def secret_name(token_id: str) -> str:
    return f"bootstrap-token-{token_id}"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def token_secret(token: JoinToken, *, role: str, expires: datetime.datetime, description: str = "") -> dict[str, Any]:
    """The kube-system Secret that records ``token`` (its secret only as a hash)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": SECRET_TYPE,
        "metadata": {"name": secret_name(token.token_id), "namespace": NAMESPACE},
        "data": {
            "token-id": _b64(token.token_id),
            "token-secret-sha256": _b64(_digest(token.secret)),
            "expiration": _b64(rfc3339(expires)),
            "usage-bootstrap-authentication": _b64("true"),
            "auth-extra-groups": _b64(GROUP_PREFIX + role),
            "description": _b64(description),
        },
    }


@dataclass(frozen=True, slots=True)
class TokenRecord:
    token_id: str
    role: str
    expires: datetime.datetime
    description: str


def read_record(secret: dict[str, Any]) -> TokenRecord | None:
    """The token a stored Secret describes, or None if it is not a well-formed edgek8s token Secret."""
    if secret.get("type") != SECRET_TYPE:
        return None
    try:
        data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
        expires = datetime.datetime.fromisoformat(data["expiration"].replace("Z", "+00:00"))
        role = data["auth-extra-groups"].removeprefix(GROUP_PREFIX)
        if role not in ROLES or data.get("usage-bootstrap-authentication") != "true":
            return None
        return TokenRecord(data["token-id"], role, expires, data.get("description", ""))
    except (KeyError, ValueError, TypeError):
        return None


def verify(secret_obj: dict[str, Any], token_secret_value: str, *, now: datetime.datetime) -> TokenRecord | None:
    """The token's record if ``token_secret_value`` matches the stored hash and it has not expired."""
    record = read_record(secret_obj)
    if record is None:
        return None
    try:
        stored = base64.b64decode(secret_obj["data"]["token-secret-sha256"]).decode()
    except (KeyError, ValueError, TypeError):
        return None
    if not hmac.compare_digest(stored, _digest(token_secret_value)):
        return None
    return record if now < record.expires else None
