"""A renewal's key and CSR come from a child process (pki.renewal_request): same identity, the current
certificate's names, a fresh key that matches the CSR, and a clear error for a file that is no certificate."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from edgek8s.pki.certs import issue, new_ca, parse_csr, write_pair
from edgek8s.pki.renewal_request import RenewalRequestError, renewal_request


async def test_the_child_makes_a_csr_for_the_same_identity_and_names(tmp_path: Path) -> None:
    ca = new_ca()
    pair = issue(ca, common_name="system:node:pi", organizations=["system:nodes"], dns_names=["pi"],
                 ip_addresses=["192.0.2.7"], server=True)
    write_pair(pair, tmp_path / "s.crt", tmp_path / "s.key")
    request = await renewal_request(tmp_path / "s.crt")
    assert (request.user, request.groups) == ("system:node:pi", ("system:nodes",))
    assert (request.dns_names, request.ip_addresses) == (["pi"], ["192.0.2.7"])
    parsed = parse_csr(request.csr_pem)  # checks the CSR's signature
    assert parsed.common_name == "system:node:pi" and parsed.organizations == ("system:nodes",)
    key = serialization.load_pem_private_key(request.key_pem, password=None)
    assert key.public_key().public_numbers() == parsed.public_key.public_numbers()  # the key signed the CSR
    assert request.key_pem != pair.key_pem


async def test_a_file_that_is_no_certificate_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "junk.crt").write_text("not a certificate")
    with pytest.raises(RenewalRequestError, match="cannot read the certificate"):
        await renewal_request(tmp_path / "junk.crt")
