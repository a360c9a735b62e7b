"""The one renewal loop every certificate holder runs: renew at two thirds of the lifetime, retry with backoff.

``keep_renewed(cert_file, renew)`` sleeps until the certificate in ``cert_file`` has lived ``fraction`` of
its lifetime, awaits ``renew()`` (which writes a new certificate to ``cert_file`` and reloads whatever
uses it in place), and goes on with the new file. A failed renewal is retried with jittered exponential
backoff (never past ``retry_max``) until it works; the loop only ends by cancellation. It reads the file
with the stdlib's decoder so agents that never renew do not pay for importing ``cryptography``.

The lifetime counts from the issue time: signers backdate ``notBefore`` by ``BACKDATE_SECONDS`` (pki.certs
``BACKDATE``) to tolerate clocks a little behind, which would otherwise dominate short lifetimes and make a
30-second certificate look due before it was issued.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

logger = logging.getLogger(__name__)

BACKDATE_SECONDS = 300.0  # pki.certs.BACKDATE is built from it
RENEW_FRACTION = 2 / 3


def validity(cert_file: Path) -> tuple[float, float]:
    """(notBefore, notAfter) of a PEM certificate file, as unix seconds."""
    info = ssl._ssl._test_decode_cert(str(cert_file))  # type: ignore[attr-defined]
    return ssl.cert_time_to_seconds(info["notBefore"]), ssl.cert_time_to_seconds(info["notAfter"])


def renew_at(cert_file: Path, fraction: float = RENEW_FRACTION) -> float:
    """Unix time at ``fraction`` of the certificate's lifetime, counted from its issue."""
    not_before, not_after = validity(cert_file)
    issued = min(not_before + BACKDATE_SECONDS, not_after)
    return issued + (not_after - issued) * fraction


async def keep_renewed(cert_file: Path, renew: Callable[[], Awaitable[None]], *, what: str,
                       fraction: float = RENEW_FRACTION, retry_initial: float = 1.0, retry_max: float = 60.0,
                       clock: Callable[[], float] = time.time) -> None:
    """Run until cancelled: ``renew()`` whenever ``cert_file`` passes ``fraction`` of its lifetime."""
    failures = 0
    while True:
        if failures:
            delay = min(retry_max, retry_initial * 2 ** (failures - 1)) * random.uniform(0.5, 1.0)
        else:
            delay = await asyncio.to_thread(renew_at, cert_file, fraction) - clock()
        if delay > 0:
            await asyncio.sleep(min(delay, 3600.0))
            if not failures:
                continue  # re-read: the file may have been renewed by someone else meanwhile
        try:
            await renew()
        except Exception as exc:  # any failure is retried: this loop must outlive it
            failures += 1
            logger.warning("renewal of the %s certificate failed (%s: %s); retry %d", what, type(exc).__name__,
                           exc, failures)
            continue
        if failures:
            logger.info("renewal of the %s certificate succeeded after %d retries", what, failures)
        failures = 0
        not_after = (await asyncio.to_thread(validity, cert_file))[1]
        logger.info("renewed the %s certificate; valid until %s", what,
                    time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(not_after)))
