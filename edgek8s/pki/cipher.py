"""Authenticated encryption for Raft traffic, in the slot PySyncObj keeps for its Fernet encryptor.

PySyncObj unpickles every message a peer sends, so a Raft port that accepts unauthenticated bytes is
remote code execution. Its own password mode (Fernet: AES-CBC + HMAC, base64, PBKDF2 with a fixed salt)
works but halves throughput. This module offers the same three-method interface PySyncObj's
``TcpConnection`` calls (``encrypt_at_time``, ``extract_timestamp``, ``decrypt``) on top of an AEAD
(ChaCha20-Poly1305, fast on ARM cores without AES instructions as well as on x86).

Invariants:
- every frame is ``seq (8 bytes, big endian) | nonce prefix (4 bytes) | ciphertext+tag``; ``seq`` is
  authenticated as associated data and is strictly increasing per process, so PySyncObj's per-connection
  ``timestamp >= last`` check rejects replays of older frames;
- the nonce is ``prefix | seq``: the prefix is random per process and ``seq`` never repeats within it,
  so a nonce is never reused under one key;
- a frame that fails authentication raises, and PySyncObj then drops the connection.
"""

from __future__ import annotations

import os
import threading
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_SEQ_BYTES = 8
_PREFIX_BYTES = 4
_HEADER = _SEQ_BYTES + _PREFIX_BYTES


def derive_raft_key(cluster_secret: bytes) -> bytes:
    """Derive the Raft transport key from the cluster secret (domain-separated from other uses)."""
    if len(cluster_secret) < 16:
        raise ValueError("the cluster secret must be at least 16 bytes")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"edgek8s raft transport v1").derive(
        cluster_secret
    )


class RaftCipher:
    """AEAD frames for PySyncObj's encryptor slot; safe to share between connections and threads."""

    def __init__(self, key: bytes) -> None:
        self._aead = ChaCha20Poly1305(key)
        self._prefix = os.urandom(_PREFIX_BYTES)
        # Starting from the wall clock keeps seq increasing across restarts of this process too.
        self._seq = time.time_ns()
        self._lock = threading.Lock()

    def _next_seq(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq

    def encrypt_at_time(self, data: bytes, current_time: int) -> bytes:
        seq = self._next_seq().to_bytes(_SEQ_BYTES, "big")
        return seq + self._prefix + self._aead.encrypt(self._prefix + seq, data, seq)

    def extract_timestamp(self, token: bytes) -> int:
        if len(token) < _HEADER:
            raise ValueError("short frame")
        return int.from_bytes(token[:_SEQ_BYTES], "big")

    def decrypt(self, token: bytes) -> bytes:
        seq = token[:_SEQ_BYTES]
        prefix = token[_SEQ_BYTES:_HEADER]
        return self._aead.decrypt(prefix + seq, token[_HEADER:], seq)
