"""Join tokens, the failure limiter, CSR parsing and client certificate verification (pure, no I/O)."""

from __future__ import annotations

import datetime

import pytest

from edgek8s._util.ratelimit import FailureLimiter
from edgek8s.pki import tokens
from edgek8s.pki.certs import ClientVerifier, ca_hash, issue, new_ca, new_csr, parse_csr, reissue

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def test_token_round_trip_and_format() -> None:
    token = tokens.new_token("sha256:" + "ab" * 32)
    text = str(token)
    assert text.startswith("EK10" + "ab" * 32 + "::") and len(token.bearer) == 23
    assert tokens.parse_token(text) == token
    assert tokens.parse_bearer(token.bearer) == (token.token_id, token.secret)
    for bad in ("", "K10abc::x.y", text[:-1], text.upper(), text + "x"):
        with pytest.raises(ValueError, match="EK10"):
            tokens.parse_token(bad)
    assert tokens.parse_bearer("eyJhbGciOi.something") is None


def test_store_keeps_only_a_hash_and_checks_expiry() -> None:
    token = tokens.new_token("sha256:" + "00" * 32)
    secret = tokens.token_secret(token, role="master", expires=NOW + datetime.timedelta(hours=1))
    assert token.secret not in str(secret)
    assert token.secret.encode() not in b"".join(
        __import__("base64").b64decode(v) for v in secret["data"].values())
    record = tokens.verify(secret, token.secret, now=NOW)
    assert record is not None and record.role == "master"
    assert tokens.verify(secret, "x" * 16, now=NOW) is None
    assert tokens.verify(secret, token.secret, now=NOW + datetime.timedelta(hours=2)) is None
    assert tokens.verify({**secret, "type": "Opaque"}, token.secret, now=NOW) is None
    with pytest.raises(ValueError, match="role"):
        tokens.token_secret(token, role="admin", expires=NOW)


def test_failure_limiter_bursts_then_refills() -> None:
    now = [0.0]
    limiter = FailureLimiter(burst=3, interval=1.0, global_burst=5, clock=lambda: now[0])
    for _ in range(3):
        assert limiter.allowed("10.0.0.1")
        limiter.failed("10.0.0.1")
    assert not limiter.allowed("10.0.0.1")
    assert limiter.allowed("10.0.0.2")
    limiter.failed("10.0.0.2")
    limiter.failed("10.0.0.3")
    assert not limiter.allowed("10.0.0.4")  # the global bucket is empty: spreading addresses does not help
    now[0] = 1.5
    assert limiter.allowed("10.0.0.1")


def test_csr_parsing_refuses_garbage_and_reports_what_it_asks_for() -> None:
    csr, key = new_csr("system:node:pi", ["system:nodes"])
    request = parse_csr(csr)
    assert (request.common_name, request.organizations) == ("system:node:pi", ("system:nodes",))
    assert b"PRIVATE KEY" in key and b"PRIVATE" not in csr
    for garbage in (b"", b"hello", b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"):
        with pytest.raises(ValueError, match="signing request"):
            parse_csr(garbage)
    tampered = csr.replace(csr.splitlines()[3], csr.splitlines()[3][:-4] + b"AAAA")
    with pytest.raises(ValueError):
        parse_csr(tampered)


def _der(pem: bytes) -> bytes:
    import ssl

    return ssl.PEM_cert_to_DER_cert(pem.decode())


def test_client_verifier() -> None:
    ca, other = new_ca(), new_ca("other")
    verifier = ClientVerifier(ca.cert_pem)
    good = issue(ca, common_name="system:node:a", organizations=["system:nodes"], client=True)
    identity = verifier.identity(_der(good.cert_pem))
    assert identity is not None and (identity.user, identity.groups) == ("system:node:a", ("system:nodes",))
    assert verifier.identity(_der(issue(other, common_name="admin", client=True).cert_pem)) is None
    assert verifier.identity(_der(issue(ca, common_name="srv", server=True).cert_pem)) is None  # no clientAuth
    assert verifier.identity(_der(ca.cert_pem)) is None  # a CA certificate is no client
    assert verifier.identity(_der(good.cert_pem), now=identity.not_after + 1) is None
    assert verifier.identity(_der(good.cert_pem), now=identity.not_before - 1) is None
    assert verifier.identity(None) is None and verifier.identity(b"garbage") is None
    # Same subject name as the real CA, different key: refused by the signature check.
    impostor = new_ca(ca.certificate.subject.rfc4514_string().removeprefix("CN="))
    assert verifier.identity(_der(issue(impostor, common_name="admin", client=True).cert_pem)) is None


def test_reissue_keeps_names_and_changes_key() -> None:
    ca = new_ca()
    old = issue(ca, common_name="m1", dns_names=["m1.local"], ip_addresses=["10.0.0.1"], server=True,
                lifetime=datetime.timedelta(hours=1))
    new = reissue(ca, old.cert_pem)
    assert new.key_pem != old.key_pem
    assert new.certificate.subject == old.certificate.subject
    def names(pair: object) -> object:
        return next(e.value for e in pair.certificate.extensions if e.oid.dotted_string == "2.5.29.17")  # type: ignore[attr-defined]

    assert names(new) == names(old)
    assert ca_hash(ca.cert_pem).startswith("sha256:") and len(ca_hash(ca.cert_pem)) == 71


def test_only_the_api_context_lets_unverified_certificates_through(tmp_path: object) -> None:
    """A foreign certificate fails the handshake on ordinary server contexts; only ``verify_in_app``
    (the API, which verifies per request) completes it. Real handshakes over a socket pair."""
    import socket
    import ssl
    import threading
    from pathlib import Path

    from edgek8s.pki.certs import client_tls_context, server_tls_context, write_pair

    base = Path(str(tmp_path))
    ca, foreign = new_ca(), new_ca("foreign")
    write_pair(ca, base / "ca.crt", base / "ca.key")
    write_pair(issue(ca, common_name="s", ip_addresses=["127.0.0.1"], server=True), base / "s.crt", base / "s.key")
    write_pair(issue(foreign, common_name="admin", client=True), base / "f.crt", base / "f.key")

    def handshake(server_context: ssl.SSLContext) -> bytes | None:
        left, right = socket.socketpair()
        result: list[bytes | None] = []

        def serve() -> None:
            try:
                with server_context.wrap_socket(left, server_side=True) as tls:
                    result.append(tls.getpeercert(binary_form=True))
            except (ssl.SSLError, OSError):
                result.append(None)

        thread = threading.Thread(target=serve)
        thread.start()
        client = client_tls_context(base / "ca.crt", base / "f.crt", base / "f.key")
        try:
            with client.wrap_socket(right, server_hostname="127.0.0.1") as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError):
            pass
        thread.join(timeout=10)
        return result[0]

    files = (base / "s.crt", base / "s.key", base / "ca.crt")
    assert handshake(server_tls_context(*files)) is None
    assert handshake(server_tls_context(*files, require_client_cert=True)) is None
    der = handshake(server_tls_context(*files, verify_in_app=True))
    assert der is not None and ClientVerifier(ca.cert_pem).identity(der) is None
