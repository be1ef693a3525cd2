"""Certificate helpers: names a certificate is for, and RFC 6125 name matching."""

import datetime
from pathlib import Path

import pytest
import trustme

from mailseal.tls.certs import inspect_pair, make_self_signed, name_matches


@pytest.mark.parametrize(
    ("pattern", "hostname", "expected"),
    [
        ("mail.example.com", "mail.example.com", True),
        ("MAIL.example.com.", "mail.EXAMPLE.com", True),
        ("*.example.com", "mail.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "a.b.example.com", False),
        ("*.com", "example.com", False),
        ("mail.example.com", "mx.example.com", False),
    ],
)
def test_name_matches(pattern: str, hostname: str, expected: bool) -> None:
    assert name_matches(pattern, hostname) is expected


def test_inspect_pair_reports_san_names_of_a_ca_issued_cert(tmp_path: Path) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("mx1.example.net", "mx2.example.net")
    leaf.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    (tmp_path / "key.pem").chmod(0o600)
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    now = datetime.datetime.now(datetime.UTC)
    report = inspect_pair(str(tmp_path / "cert.pem"), str(tmp_path / "key.pem"), now=now)
    assert report.errors == ()
    assert report.warnings == ()
    assert report.names == ("mx1.example.net", "mx2.example.net")


def test_make_self_signed_never_overwrites(tmp_path: Path) -> None:
    make_self_signed("a.example", tmp_path / "c.pem", tmp_path / "k.pem")
    with pytest.raises(FileExistsError):
        make_self_signed("b.example", tmp_path / "c.pem", tmp_path / "k.pem")
