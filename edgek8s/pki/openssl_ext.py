"""Two things stdlib ``ssl`` cannot do, done on its ``SSL_CTX`` through ctypes: request a client
certificate without letting OpenSSL reject it, and advertise the client CA's name.

Why: the API requests but does not require a client certificate, so a client without one gets a clean
401. With ``CERT_OPTIONAL`` OpenSSL also *verifies* a certificate that is sent, and fails the handshake
when it comes from another CA or has expired; kubectl answers a failed handshake by retrying for a
long time instead of printing "Unauthorized". Advertising the CA's name is not enough (measured):
client-go installs ``GetClientCertificate`` and sends its certificate whatever names the server lists.
kube-apiserver's answer is ``tls.RequestClientCert`` plus chain verification in its x509
authenticator; this module does the same: ``accept_any_client_certificate`` installs a verify
callback that lets the handshake finish, and ``pki.certs.ClientVerifier`` verifies the
peer certificate (issuer, signature, validity, usage) on every request. Callers must never trust
``getpeercert()``'s decoded dict on such a context, only ``ClientVerifier``.

DANGEROUS: this reaches into CPython's ``PySSLContext`` through ctypes to get the ``SSL_CTX *`` (the
first field after the object header in CPython 3.8-3.13). Before writing anything the pointer is
checked against two values read through the public API (verify mode and options); on any mismatch,
or when libssl cannot be found, nothing is changed and ``False`` is returned: OpenSSL then keeps
verifying (foreign or expired certificates fail the handshake; nothing is accepted that should not be).
The context's ``verify_mode`` must not be set again afterwards (CPython would drop the callback).
"""

from __future__ import annotations

import ctypes
import logging
import ssl
import sys
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_SSL_VERIFY_PEER = 0x01
_SSL_VERIFY_FAIL_IF_NO_PEER_CERT = 0x02
_VERIFY_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)


def _accept(preverify_ok: int, store_ctx: Any) -> int:
    # Runs inside OpenSSL's handshake; the certificate is verified per request by the authenticator.
    return 1


_finish_handshake = _VERIFY_CALLBACK(_accept)  # module-level: must outlive every context using it


def _loaded_libssl() -> ctypes.CDLL | None:
    """The libssl this process's ``_ssl`` module is linked against (found in /proc/self/maps)."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    for line in maps.splitlines():
        fields = line.split()
        if fields and "/libssl.so" in fields[-1]:
            libssl = ctypes.CDLL(fields[-1])
            libssl.SSL_CTX_get_verify_mode.argtypes = [ctypes.c_void_p]
            libssl.SSL_CTX_get_verify_mode.restype = ctypes.c_int
            libssl.SSL_CTX_get_options.argtypes = [ctypes.c_void_p]
            libssl.SSL_CTX_get_options.restype = ctypes.c_uint64
            libssl.SSL_load_client_CA_file.argtypes = [ctypes.c_char_p]
            libssl.SSL_load_client_CA_file.restype = ctypes.c_void_p
            libssl.SSL_CTX_set_client_CA_list.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
            libssl.SSL_CTX_set_client_CA_list.restype = None
            libssl.SSL_CTX_set_verify.argtypes = [ctypes.c_void_p, ctypes.c_int, _VERIFY_CALLBACK]
            libssl.SSL_CTX_set_verify.restype = None
            return libssl
    return None


def _expected_verify_bits(context: ssl.SSLContext) -> int:
    if context.verify_mode == ssl.CERT_REQUIRED:
        return _SSL_VERIFY_PEER | _SSL_VERIFY_FAIL_IF_NO_PEER_CERT
    if context.verify_mode == ssl.CERT_OPTIONAL:
        return _SSL_VERIFY_PEER
    return 0


def _ssl_ctx(context: ssl.SSLContext) -> tuple[ctypes.CDLL, int] | None:
    if sys.implementation.name != "cpython":
        return None
    libssl = _loaded_libssl()
    if libssl is None:
        logger.warning("libssl not found; using OpenSSL's own client certificate verification")
        return None
    # PySSLContext: PyObject_HEAD (refcount, type pointer), then SSL_CTX *ctx.
    pointer = ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value or 0
    if (
        not pointer
        or libssl.SSL_CTX_get_verify_mode(pointer) != _expected_verify_bits(context)
        or libssl.SSL_CTX_get_options(pointer) != int(context.options)
    ):
        logger.warning("unexpected SSLContext layout; using OpenSSL's own client certificate verification")
        return None
    return libssl, pointer


def accept_any_client_certificate(context: ssl.SSLContext, ca_file: Path) -> bool:
    """Request a client certificate (listing ``ca_file``'s names) and let any one finish the handshake.

    ``context.verify_mode`` must be ``CERT_OPTIONAL``. Returns False (context unchanged) if not possible.
    """
    if context.verify_mode != ssl.CERT_OPTIONAL:
        raise ValueError("the context must request, not require, client certificates")
    found = _ssl_ctx(context)
    if found is None:
        return False
    libssl, pointer = found
    names = libssl.SSL_load_client_CA_file(str(ca_file).encode())
    if not names:
        raise ssl.SSLError(f"cannot read CA names from {ca_file}")
    libssl.SSL_CTX_set_client_CA_list(pointer, names)  # takes ownership of the list
    libssl.SSL_CTX_set_verify(pointer, _SSL_VERIFY_PEER, _finish_handshake)
    return True
