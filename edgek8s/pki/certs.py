"""The cluster's certificates: a CA, serving certificates, client certificates, TLS contexts.

The only place that builds X.509 objects. Keys are ECDSA P-256 (kubectl, Go and OpenSSL all accept it,
and it is fast to generate on a Pi). Private keys are written 0600 inside 0700 directories. Key
generation and signing are CPU work: async callers run them with ``asyncio.to_thread``.

Identity from a client certificate follows Kubernetes: user = subject CN, groups = subject O values.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edgek8s._util.renewal import BACKDATE_SECONDS, RENEW_FRACTION
from edgek8s.pki.layout import write_private
from edgek8s.pki.openssl_ext import accept_any_client_certificate

CA_DAYS = 3650
LEAF_DAYS = 365
BACKDATE = datetime.timedelta(seconds=BACKDATE_SECONDS)  # tolerate clocks a little behind the signer's
_X509_V_FLAG_NO_CHECK_TIME = 0x200000  # OpenSSL >= 1.1.0; absent from ssl.VerifyFlags


@dataclass(frozen=True, slots=True)
class CertPair:
    cert_pem: bytes
    key_pem: bytes

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    def fingerprint(self) -> str:
        """sha256:<hex> of the DER certificate (what a join token pins for the CA)."""
        return "sha256:" + self.certificate.fingerprint(hashes.SHA256()).hex()


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str, organizations: Iterable[str] = ()) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def new_ca(common_name: str | None = None, *, days: int = CA_DAYS) -> CertPair:
    """A self-signed CA. The default name is unique (``edgek8s-ca@<unix time>``, as k3s does): clients
    pick their certificate by the issuer names the server advertises, so two clusters' CAs must differ."""
    key = _new_key()
    now = _now()
    name = _name(common_name or f"edgek8s-ca@{int(now.timestamp())}")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertPair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _ca_key(ca: CertPair) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("the CA key must be an ECDSA key")
    return key


def _sign_leaf(
    ca: CertPair,
    public_key: ec.EllipticCurvePublicKey,
    *,
    common_name: str,
    organizations: Iterable[str],
    dns_names: Iterable[str],
    ip_addresses: Iterable[str],
    server: bool,
    client: bool,
    lifetime: datetime.timedelta,
) -> bytes:
    ca_cert = ca.certificate
    ca_key = _ca_key(ca)
    now = _now()
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] * server + [ExtendedKeyUsageOID.CLIENT_AUTH] * client
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organizations))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    alt_names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def issue(
    ca: CertPair,
    *,
    common_name: str,
    organizations: Iterable[str] = (),
    dns_names: Iterable[str] = (),
    ip_addresses: Iterable[str] = (),
    server: bool = False,
    client: bool = False,
    days: int = LEAF_DAYS,
    lifetime: datetime.timedelta | None = None,
) -> CertPair:
    """A leaf certificate signed by ``ca`` with a fresh key (``lifetime`` overrides ``days``)."""
    key = _new_key()
    cert_pem = _sign_leaf(
        ca, key.public_key(), common_name=common_name, organizations=organizations, dns_names=dns_names,
        ip_addresses=ip_addresses, server=server, client=client,
        lifetime=lifetime if lifetime is not None else datetime.timedelta(days=days),
    )
    return CertPair(cert_pem, _key_pem(key))


@dataclass(frozen=True, slots=True)
class CsrRequest:
    """What a certificate signing request asks for, after its signature was checked."""

    common_name: str
    organizations: tuple[str, ...]
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    public_key: ec.EllipticCurvePublicKey


def new_csr(common_name: str, organizations: Iterable[str] = ()) -> tuple[bytes, bytes]:
    """(CSR PEM, private key PEM) for a fresh ECDSA P-256 key: the key never leaves the requester."""
    key = _new_key()
    csr = x509.CertificateSigningRequestBuilder().subject_name(_name(common_name, organizations)).sign(
        key, hashes.SHA256()
    )
    return csr.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def parse_csr(csr_pem: bytes) -> CsrRequest:
    """The request in ``csr_pem``; ``ValueError`` with a readable reason when it is malformed, unsigned
    by its own key, or not ECDSA P-256."""
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError as exc:
        raise ValueError(f"not a PEM certificate signing request: {exc}") from None
    if not csr.is_signature_valid:
        raise ValueError("the request's signature does not match its public key")
    public_key = csr.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or public_key.curve.name != "secp256r1":
        raise ValueError("the request's key must be ECDSA P-256")
    common_names = [str(a.value) for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if len(common_names) != 1:
        raise ValueError("the request's subject must have exactly one common name")
    organizations = tuple(str(a.value) for a in csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
    try:
        sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = tuple(sans.get_values_for_type(x509.DNSName))
        ips = tuple(str(ip) for ip in sans.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        dns, ips = (), ()
    return CsrRequest(common_names[0], organizations, dns, ips, public_key)


def sign_request(
    ca: CertPair,
    request: CsrRequest,
    *,
    client: bool = True,
    server: bool = False,
    dns_names: Iterable[str] = (),
    ip_addresses: Iterable[str] = (),
    lifetime: datetime.timedelta,
) -> bytes:
    """Sign an already validated request's key and subject; SANs come from the signer, never the CSR."""
    return _sign_leaf(
        ca, request.public_key, common_name=request.common_name, organizations=request.organizations,
        dns_names=dns_names, ip_addresses=ip_addresses, server=server, client=client, lifetime=lifetime,
    )


def ca_hash(ca_pem: bytes) -> str:
    """``sha256:<hex>`` of the CA's SubjectPublicKeyInfo, as kubeadm's discovery-token-ca-cert-hash."""
    spki = x509.load_pem_x509_certificate(ca_pem).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashes.Hash(hashes.SHA256())
    digest.update(spki)
    return "sha256:" + digest.finalize().hex()


@dataclass(frozen=True, slots=True)
class CertInfo:
    subject: str
    not_before: datetime.datetime
    not_after: datetime.datetime

    def renew_at(self, fraction: float = RENEW_FRACTION) -> datetime.datetime:
        """When ``fraction`` of the lifetime has passed, counted from the issue time (notBefore is
        backdated by ``BACKDATE``, which would otherwise dominate short lifetimes)."""
        issued = min(self.not_before + BACKDATE, self.not_after)
        return issued + (self.not_after - issued) * fraction


def cert_info(cert_pem: bytes) -> CertInfo:
    cert = x509.load_pem_x509_certificate(cert_pem)
    return CertInfo(cert.subject.rfc4514_string(), cert.not_valid_before_utc, cert.not_valid_after_utc)


def write_pair(pair: CertPair, cert_path: Path, key_path: Path) -> None:
    """Key (0600) then certificate, each written atomically, parents created 0700."""
    write_private(key_path, pair.key_pem)
    write_private(cert_path, pair.cert_pem, mode=0o644)


def read_pair(cert_path: Path, key_path: Path) -> CertPair:
    return CertPair(cert_path.read_bytes(), key_path.read_bytes())


def server_tls_context(
    cert_file: Path, key_file: Path, client_ca_file: Path, *, require_client_cert: bool = False,
    verify_in_app: bool = False,
) -> ssl.SSLContext:
    """TLS for a server that requests client certificates signed by ``client_ca_file``.

    - default: requested; OpenSSL verifies one that is sent (a bad one fails the handshake);
    - ``require_client_cert``: required and verified by OpenSSL (the kubelet's endpoint);
    - ``verify_in_app`` (the API): requested, and any one finishes the handshake (see ``openssl_ext``), so
      kubectl holding a certificate of another CA, or an expired one, gets a 401 instead of a failed
      handshake it would retry for a long time. The caller MUST verify the peer certificate on every
      request with ``ClientVerifier`` and never trust ``getpeercert()``'s dict on such a context. Should
      the callback not be installable, OpenSSL verifies as usual (the validity period excepted:
      ``ClientVerifier`` checks it) and a foreign certificate fails the handshake.
    """
    if require_client_cert and verify_in_app:
        raise ValueError("a required client certificate is verified by OpenSSL")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    context.load_verify_locations(client_ca_file)
    context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    if verify_in_app:
        context.verify_flags |= _X509_V_FLAG_NO_CHECK_TIME
        accept_any_client_certificate(context, client_ca_file)
    return context


def mutual_tls_server_context(cert_file: Path, key_file: Path, client_ca_file: Path) -> ssl.SSLContext:
    """TLS for a server only other cluster components call (the kubelet's endpoint, which only API servers
    may use): a client certificate signed by ``client_ca_file`` and valid now is required by the handshake
    itself, with OpenSSL's full verification; the caller then checks who it names (``getpeercert()``)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    context.load_verify_locations(client_ca_file)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def reload_serving_cert(context: ssl.SSLContext, cert_file: Path, key_file: Path) -> None:
    """Swap the serving certificate in place: connections accepted from now on present the new one."""
    context.load_cert_chain(cert_file, key_file)


def client_tls_context(ca_file: Path, cert_file: Path | None = None, key_file: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
    if cert_file is not None and key_file is not None:
        context.load_cert_chain(cert_file, key_file)
    return context


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    user: str
    groups: tuple[str, ...]
    not_before: float  # unix seconds
    not_after: float


class ClientVerifier:
    """Verifies client certificates against the cluster CA, per request (kube-apiserver's x509
    authenticator does the same): issued by the CA (name and ECDSA signature), not a CA itself, allowed
    for client auth, and inside its validity period at ``now``. Verified certificates are remembered
    (bounded) so a kept-alive client costs one dict look-up per request; the time check is never cached.
    """

    def __init__(self, ca_pem: bytes, *, cache_size: int = 1024) -> None:
        self._ca = x509.load_pem_x509_certificate(ca_pem)
        key = self._ca.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError("the CA key must be an ECDSA key")
        self._key = key
        self._cache: dict[bytes, ClientIdentity | None] = {}
        self._cache_size = cache_size

    def identity(self, der: bytes | None, *, now: float | None = None) -> ClientIdentity | None:
        if not der:
            return None
        if der in self._cache:
            found = self._cache[der]
        else:
            found = self._verify(der)
            if len(self._cache) >= self._cache_size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[der] = found
        if found is None:
            return None
        now = time.time() if now is None else now
        return found if found.not_before <= now < found.not_after else None

    def _verify(self, der: bytes) -> ClientIdentity | None:
        try:
            cert = x509.load_der_x509_certificate(der)
            if cert.issuer != self._ca.subject or cert.signature_hash_algorithm is None:
                return None
            self._key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
            try:
                if cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
                    return None
            except x509.ExtensionNotFound:
                pass
            try:
                if ExtendedKeyUsageOID.CLIENT_AUTH not in cert.extensions.get_extension_for_class(
                    x509.ExtendedKeyUsage
                ).value:
                    return None
            except x509.ExtensionNotFound:
                pass
        except (ValueError, InvalidSignature):
            return None
        common_names = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if len(common_names) != 1 or not common_names[0]:
            return None
        groups = tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
        return ClientIdentity(common_names[0], groups, cert.not_valid_before_utc.timestamp(),
                              cert.not_valid_after_utc.timestamp())


def identity_from_peercert(peercert: dict[str, Any] | None) -> tuple[str, tuple[str, ...]] | None:
    """(user, groups) from a peer certificate OpenSSL verified (``getpeercert()``); None without one.

    Only for contexts made without ``verify_in_app``: on those the dict may describe a certificate
    nobody verified (use ``ClientVerifier``)."""
    if not peercert:
        return None
    user = ""
    groups: list[str] = []
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                user = value
            elif key == "organizationName":
                groups.append(value)
    return (user, tuple(groups)) if user else None


def unauthenticated_fetch_context() -> ssl.SSLContext:
    """DANGEROUS, for one use only: reading a master's public cluster-info before the CA is known.

    As kubeadm's token discovery and k3s's ``/cacerts`` do, the joiner reads the CA bundle without
    verifying the server, then accepts it only if its public-key hash equals the one in the join token
    (``ca_hash``). Nothing secret is sent on such a connection and nothing read from it is used unless
    the hash matches; every later request is verified against the pinned CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def client_tls_context_from_pem(ca_pem: bytes) -> ssl.SSLContext:
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=ca_pem.decode())


def cert_identity(cert_pem: bytes) -> tuple[str, tuple[str, ...]]:
    """(CN, O values) of a certificate: the Kubernetes user and groups it stands for."""
    subject = x509.load_pem_x509_certificate(cert_pem).subject
    common_names = [str(a.value) for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    groups = tuple(str(a.value) for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
    return (common_names[0] if common_names else ""), groups


def cert_sans(cert_pem: bytes) -> tuple[list[str], list[str]]:
    """The DNS names and IP addresses a certificate is valid for."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return list(sans.get_values_for_type(x509.DNSName)), [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)]


def reissue(ca: CertPair, cert_pem: bytes, *, lifetime: datetime.timedelta | None = None) -> CertPair:
    """A fresh key and certificate with the same subject, SANs and usages as ``cert_pem`` (renewal)."""
    old = x509.load_pem_x509_certificate(cert_pem)
    user, groups = cert_identity(cert_pem)
    dns, ips = cert_sans(cert_pem)
    try:
        usages = set(old.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        usages = set()
    return issue(ca, common_name=user, organizations=groups, dns_names=dns, ip_addresses=ips,
                 server=ExtendedKeyUsageOID.SERVER_AUTH in usages, client=ExtendedKeyUsageOID.CLIENT_AUTH in usages,
                 lifetime=lifetime or cert_lifetime(cert_pem))


def cert_lifetime(cert_pem: bytes) -> datetime.timedelta:
    """How long the certificate was issued for (from its issue time, not its backdated notBefore)."""
    info = cert_info(cert_pem)
    return info.not_after - min(info.not_before + BACKDATE, info.not_after)
