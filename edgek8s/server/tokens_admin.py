"""``edgek8s token create|list|delete``: join tokens as kube-system Secrets, through the admin API.

The token's secret part is printed once and stored only as a hash (pki/tokens.py).
"""

from __future__ import annotations

import base64
import datetime
import re
import ssl
from pathlib import Path

import yaml

from edgek8s.client.rest import RestClient
from edgek8s.config import ConfigError
from edgek8s.model import errors
from edgek8s.pki import tokens
from edgek8s.pki.certs import ca_hash

SECRETS = f"/api/v1/namespaces/{tokens.NAMESPACE}/secrets"
_DURATION = re.compile(r"^(\d+)([smhd])$")


def parse_duration(text: str) -> datetime.timedelta:
    match = _DURATION.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise ConfigError(f"--ttl: expected a positive duration such as 30m, 24h or 7d, got {text!r}")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
    return datetime.timedelta(**{unit: int(match.group(1))})


def kubeconfig_ca(path: Path) -> bytes:
    config = yaml.safe_load(path.read_text())
    cluster = config["clusters"][0]["cluster"]
    if cluster.get("certificate-authority-data"):
        return base64.b64decode(cluster["certificate-authority-data"])
    return (path.parent / str(cluster["certificate-authority"])).read_bytes()


async def create_token(server: str, tls: ssl.SSLContext | None, ca_pem: bytes, *, ttl: datetime.timedelta,
                       role: str, description: str = "") -> str:
    token = tokens.new_token(ca_hash(ca_pem))
    body = tokens.token_secret(token, role=role, expires=datetime.datetime.now(datetime.UTC) + ttl,
                               description=description)
    async with RestClient(server, ssl_context=tls) as client:
        await client.create(SECRETS, body)
    return str(token)


async def list_tokens(server: str, tls: ssl.SSLContext | None) -> int:
    async with RestClient(server, ssl_context=tls) as client:
        listing = await client.get(SECRETS, fieldSelector=f"type={tokens.SECRET_TYPE}")
    now = datetime.datetime.now(datetime.UTC)
    print(f"{'TOKEN ID':<10} {'ROLE':<8} {'EXPIRES':<22} {'STATE':<8} DESCRIPTION")
    for item in listing.get("items") or ():
        record = tokens.read_record(item)
        if record is None:
            continue
        state = "valid" if now < record.expires else "expired"
        print(f"{record.token_id:<10} {record.role:<8} {tokens.rfc3339(record.expires):<22} {state:<8} "
              f"{record.description}")
    return 0


async def delete_token(server: str, tls: ssl.SSLContext | None, token_id: str) -> int:
    token_id = token_id.split("::")[-1].partition(".")[0]
    async with RestClient(server, ssl_context=tls) as client:
        try:
            await client.delete(f"{SECRETS}/{tokens.secret_name(token_id)}")
        except errors.NotFound:
            print(f"no token with id {token_id}")
            return 1
    print(f"deleted token {token_id}")
    return 0
