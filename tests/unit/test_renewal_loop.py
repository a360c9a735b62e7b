"""The shared renewal loop: due at two thirds of the lifetime counted from issue, retried until it works."""

from __future__ import annotations

import asyncio
import base64
import datetime
import time
from pathlib import Path

import pytest
import yaml

from edgek8s._util import renewal
from edgek8s._util.renewal import keep_renewed, renew_at, validity
from edgek8s.pki.certs import BACKDATE, cert_info, issue, new_ca, write_pair
from edgek8s.server.kubeconfig import render_kubeconfig, write_kubeconfig
from edgek8s.server.serving import OwnCertificate, _reissue

CA = new_ca()


def short_cert(path: Path, seconds: float) -> None:
    write_pair(issue(CA, common_name="x", client=True, lifetime=datetime.timedelta(seconds=seconds)),
               path, path.with_suffix(".key"))


def test_renew_at_ignores_the_backdate(tmp_path: Path) -> None:
    cert = tmp_path / "c.crt"
    before = time.time()
    short_cert(cert, 30)
    # Counted from notBefore (5 minutes back) a 30 s certificate would look due long before it was issued.
    due = renew_at(cert)
    assert due >= before - 1 + 20
    assert due <= time.time() + 20
    assert BACKDATE.total_seconds() == renewal.BACKDATE_SECONDS
    assert cert_info(cert.read_bytes()).renew_at().timestamp() == pytest.approx(due, abs=1)


async def test_keep_renewed_renews_on_time_and_retries_failures(tmp_path: Path) -> None:
    cert = tmp_path / "c.crt"
    short_cert(cert, 3)
    calls: list[float] = []
    four = asyncio.Event()

    async def renew() -> None:
        calls.append(time.time())
        if len(calls) >= 4:
            four.set()
        if len(calls) == 2:
            raise OSError("the master is down")  # retried after a short backoff
        await asyncio.to_thread(short_cert, cert, 3)

    task = asyncio.create_task(keep_renewed(cert, renew, what="test", retry_initial=0.1))
    try:
        await asyncio.wait_for(four.wait(), timeout=15)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert len(calls) >= 4
    assert calls[2] - calls[1] < 1.0  # the failed attempt was retried at once, not at the next renewal point
    # Two thirds of a 3 s lifetime after the renewal before (certificate times have 1 s precision).
    assert 0.9 < calls[1] - calls[0] < 3.0
    assert validity(cert)[1] > time.time()


def test_a_masters_renewal_rewrites_the_kubeconfig_that_embeds_its_pair(tmp_path: Path) -> None:
    ca_cert, ca_key = tmp_path / "ca.crt", tmp_path / "ca.key"
    write_pair(CA, ca_cert, ca_key)
    own = OwnCertificate(what="admin", cert=tmp_path / "admin.crt", key=tmp_path / "admin.key",
                         kubeconfig=tmp_path / "admin.conf")
    old = issue(CA, common_name="admin", organizations=["system:masters"], client=True)
    write_pair(old, own.cert, own.key)
    write_kubeconfig(own.kubeconfig, render_kubeconfig(server="https://127.0.0.1:6443", ca_pem=CA.cert_pem, client=old))
    _reissue(own, ca_cert, ca_key, None)
    config = yaml.safe_load(own.kubeconfig.read_text())
    user = config["users"][0]["user"]
    assert own.cert.read_bytes() != old.cert_pem
    assert base64.b64decode(user["client-certificate-data"]) == own.cert.read_bytes()
    assert base64.b64decode(user["client-key-data"]) == own.key.read_bytes()
    assert config["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"

