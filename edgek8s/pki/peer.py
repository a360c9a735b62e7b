"""TLS contexts and peer identities with the stdlib alone (no ``cryptography``), for processes that must stay light.

The kubelet's HTTPS endpoint runs in every agent; importing ``cryptography`` there would cost each worker
~10 MB of RSS. Its context (``mutual_tls_server_context``) makes OpenSSL *require* a client certificate and
verify it in the handshake (chain to the cluster CA, signature, validity period, ``clientAuth`` usage for
a server-side handshake), so the decoded ``getpeercert()`` dict describes a verified certificate and
``verified_identity`` only reads who it names and re-checks the validity period per request (a
kept-alive connection outlives a certificate). Unlike ``certs.ClientVerifier`` it cannot see
basicConstraints; the cluster CA (path length 0) signs only leaves (``ca=False``).

Invariant: ``verified_identity`` is only sound on a context made by ``mutual_tls_server_context`` (never on
one with ``openssl_ext.accept_any_client_certificate``: there the dict may describe a certificate nobody
verified; use ``certs.ClientVerifier``).
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    user: str
    groups: tuple[str, ...]
    not_before: float  # unix seconds
    not_after: float


def mutual_tls_server_context(cert_file: Path, key_file: Path, client_ca_file: Path) -> ssl.SSLContext:
    """TLS for a server only other cluster components call (the kubelet's endpoint, which only API servers
    may use): a client certificate signed by ``client_ca_file`` and valid now is required by the handshake
    itself, with OpenSSL's full verification; the caller then checks who it names (``verified_identity``)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    context.load_verify_locations(client_ca_file)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_tls_context(ca_file: Path, cert_file: Path | None = None, key_file: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
    if cert_file is not None and key_file is not None:
        context.load_cert_chain(cert_file, key_file)
    return context


def identity_from_peercert(peercert: dict[str, Any] | None) -> tuple[str, tuple[str, ...]] | None:
    """(user, groups) from a peer certificate OpenSSL verified (``getpeercert()``); None without one or
    unless it names exactly one non-empty CN."""
    if not peercert:
        return None
    common_names: list[str] = []
    groups: list[str] = []
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                common_names.append(value)
            elif key == "organizationName":
                groups.append(value)
    if len(common_names) != 1 or not common_names[0]:
        return None
    return common_names[0], tuple(groups)


def verified_identity(peercert: dict[str, Any] | None, *, now: float | None = None) -> ClientIdentity | None:
    """Who a handshake-verified peer certificate names, or None (none, unreadable, or outside its validity
    period at ``now``)."""
    named = identity_from_peercert(peercert)
    if named is None or peercert is None:
        return None
    try:
        not_before = ssl.cert_time_to_seconds(peercert["notBefore"])
        not_after = ssl.cert_time_to_seconds(peercert["notAfter"])
    except (KeyError, ValueError):
        return None
    now = time.time() if now is None else now
    if not not_before <= now < not_after:
        return None
    return ClientIdentity(named[0], named[1], float(not_before), float(not_after))
