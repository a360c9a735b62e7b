"""A master's own certificates, renewed in place before two thirds of their lifetime, without restart.

The serving certificate is re-issued with the same names by this master's CA key, written (key then
certificate, each with one rename) and loaded into the live ``SSLContext``: connections accepted from
then on present it; open ones are not disturbed. Signing runs in a thread.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import ssl
from pathlib import Path

from edgek8s.pki.certs import cert_info, read_pair, reissue, reload_serving_cert
from edgek8s.pki.layout import write_private

logger = logging.getLogger(__name__)


def _renew(cert_file: Path, key_file: Path, ca_cert: Path, ca_key: Path) -> None:
    pair = reissue(read_pair(ca_cert, ca_key), cert_file.read_bytes())
    write_private(key_file, pair.key_pem)
    write_private(cert_file, pair.cert_pem, mode=0o644)


async def keep_serving_cert(context: ssl.SSLContext, *, cert_file: Path, key_file: Path, ca_cert: Path,
                            ca_key: Path, fraction: float = 2 / 3) -> None:
    """Run until cancelled: renew the serving certificate whenever it passes ``fraction`` of its lifetime."""
    while True:
        info = cert_info(await asyncio.to_thread(cert_file.read_bytes))
        delay = (info.renew_at(fraction) - datetime.datetime.now(datetime.UTC)).total_seconds()
        if delay > 0:
            await asyncio.sleep(min(delay, 3600.0))
            continue
        try:
            await asyncio.to_thread(_renew, cert_file, key_file, ca_cert, ca_key)
            # On the loop, not in the thread: handshakes on the loop read this SSL_CTX (two small files).
            reload_serving_cert(context, cert_file, key_file)
            logger.info("renewed the serving certificate %s", cert_file)
        except (OSError, ValueError, ssl.SSLError) as exc:
            logger.warning("serving certificate renewal failed (%s); retrying in 10 s", exc)
            await asyncio.sleep(10.0)
