"""Server keys and chains: legacy pairs, RSA+ECDSA side by side, chain files, broken files."""

import ssl
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from tls_helpers import SEED_TLS, client_context, handshake, make_config, write_leaf

from mailseal.tls.certs import make_self_signed
from mailseal.tls.server import NO_SERVER_CERTS, ServerTls, build_server_tls

V = ssl.TLSVersion
ECDSA_ONLY = "ECDHE-ECDSA-AES128-GCM-SHA256"
RSA_ONLY = "ECDHE-RSA-AES128-GCM-SHA256"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def rsa_leaf(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert("mail.example.com", key_type=trustme.KeyType.RSA)


@pytest.fixture(scope="module")
def ec_leaf(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert("mail.example.com", key_type=trustme.KeyType.ECDSA)


def build(**settings: str) -> ServerTls:
    return build_server_tls(make_config(**{**SEED_TLS, **settings}))


def served_key(server: ServerTls, ca: trustme.CA, ciphers: str | None = None) -> object:
    """The public key of the certificate the server presents to a TLS 1.2 client."""
    assert server.problem is None, server.problem
    assert server.context is not None
    client = client_context(ca, maximum=V.TLSv1_2, ciphers=ciphers)
    client_side, _ = handshake(client, server.context)
    der = client_side.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).public_key()


def test_key_inside_the_cert_file(
    tmp_path: Path, ca: trustme.CA, rsa_leaf: trustme.LeafCert
) -> None:
    cert = write_leaf(tmp_path, "combined", rsa_leaf, key_inside=True)
    server = build(smtpd_tls_cert_file=str(cert))  # key_file defaults to the cert file
    assert isinstance(served_key(server, ca), rsa.RSAPublicKey)
    assert server.warnings == ()


def test_separate_key_file(tmp_path: Path, ca: trustme.CA, rsa_leaf: trustme.LeafCert) -> None:
    cert = write_leaf(tmp_path, "rsa", rsa_leaf, key_inside=False)
    server = build(smtpd_tls_cert_file=str(cert), smtpd_tls_key_file=str(tmp_path / "rsa.key"))
    assert isinstance(served_key(server, ca), rsa.RSAPublicKey)


def test_self_signed_pair_from_mailseal_init(tmp_path: Path) -> None:
    make_self_signed("mail.example.com", tmp_path / "cert.pem", tmp_path / "key.pem")
    server = build(
        smtpd_tls_cert_file=str(tmp_path / "cert.pem"),
        smtpd_tls_key_file=str(tmp_path / "key.pem"),
    )
    assert server.context is not None
    _, server_side = handshake(client_context(), server.context)
    assert server_side.version() == "TLSv1.3"


def test_rsa_and_ecdsa_chosen_by_the_client(
    tmp_path: Path, ca: trustme.CA, rsa_leaf: trustme.LeafCert, ec_leaf: trustme.LeafCert
) -> None:
    server = build(
        smtpd_tls_cert_file=str(write_leaf(tmp_path, "rsa", rsa_leaf, key_inside=True)),
        smtpd_tls_eccert_file=str(write_leaf(tmp_path, "ec", ec_leaf, key_inside=False)),
        smtpd_tls_eckey_file=str(tmp_path / "ec.key"),
    )
    assert isinstance(served_key(server, ca, ECDSA_ONLY), ec.EllipticCurvePublicKey)
    assert isinstance(served_key(server, ca, RSA_ONLY), rsa.RSAPublicKey)


def test_chain_files_with_both_key_types_in_one_file(
    tmp_path: Path, ca: trustme.CA, rsa_leaf: trustme.LeafCert, ec_leaf: trustme.LeafCert
) -> None:
    both = tmp_path / "chains.pem"
    both.write_bytes(
        b"".join(
            leaf.private_key_pem.bytes() + b"".join(pem.bytes() for pem in leaf.cert_chain_pems)
            for leaf in (ec_leaf, rsa_leaf)
        )
    )
    server = build(smtpd_tls_chain_files=str(both))
    assert isinstance(served_key(server, ca, ECDSA_ONLY), ec.EllipticCurvePublicKey)
    assert isinstance(served_key(server, ca, RSA_ONLY), rsa.RSAPublicKey)


def test_chain_files_split_key_then_certificate_files(
    tmp_path: Path, ca: trustme.CA, rsa_leaf: trustme.LeafCert
) -> None:
    cert = write_leaf(tmp_path, "rsa", rsa_leaf, key_inside=False)
    server = build(
        smtpd_tls_chain_files=f"{tmp_path / 'rsa.key'}, {cert}",
        smtpd_tls_cert_file=str(cert),
    )
    assert isinstance(served_key(server, ca), rsa.RSAPublicKey)
    assert server.warnings == ("smtpd_tls_chain_files is set: ignoring smtpd_tls_cert_file",)


def test_chain_file_with_certificate_first_is_a_problem(
    tmp_path: Path, rsa_leaf: trustme.LeafCert
) -> None:
    cert = write_leaf(tmp_path, "combined", rsa_leaf, key_inside=True)
    server = build(smtpd_tls_chain_files=str(cert))
    assert server.context is None
    assert server.problem == f"error loading chain from {cert}: key not first"


def test_chain_file_key_without_certificate(tmp_path: Path, rsa_leaf: trustme.LeafCert) -> None:
    key = tmp_path / "only.key"
    key.write_bytes(rsa_leaf.private_key_pem.bytes())
    server = build(smtpd_tls_chain_files=str(key))
    assert server.problem == (
        f"error loading certificate chain: key at index 1 in {key} not followed by a certificate"
    )


def test_chain_file_key_and_certificate_mismatch(
    tmp_path: Path, rsa_leaf: trustme.LeafCert, ec_leaf: trustme.LeafCert
) -> None:
    chain = tmp_path / "wrong.pem"
    chain.write_bytes(ec_leaf.private_key_pem.bytes() + rsa_leaf.cert_chain_pems[0].bytes())
    server = build(smtpd_tls_chain_files=str(chain))
    assert server.problem is not None
    assert "does not match the certificate" in server.problem


def test_missing_cert_file_is_a_problem_not_an_exception(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    server = build(smtpd_tls_cert_file=str(missing))
    assert server.context is None
    assert server.problem == (
        f'cannot get RSA certificate from file "{missing}": disabling TLS support '
        "(No such file or directory)"
    )


def test_key_that_does_not_match(
    tmp_path: Path, ca: trustme.CA, rsa_leaf: trustme.LeafCert
) -> None:
    other = ca.issue_cert("other.example.com", key_type=trustme.KeyType.RSA)
    cert = write_leaf(tmp_path, "rsa", rsa_leaf, key_inside=False)
    wrong_key = tmp_path / "other.key"
    wrong_key.write_bytes(other.private_key_pem.bytes())
    server = build(smtpd_tls_cert_file=str(cert), smtpd_tls_key_file=str(wrong_key))
    assert server.context is None
    assert server.problem == (
        f"RSA private key in {wrong_key} does not match public key in {cert}: disabling TLS support"
    )


def test_file_without_a_key(tmp_path: Path, rsa_leaf: trustme.LeafCert) -> None:
    cert = write_leaf(tmp_path, "rsa", rsa_leaf, key_inside=False)
    server = build(smtpd_tls_cert_file=str(cert))
    assert server.problem == (
        f'cannot get RSA private key from file "{cert}": disabling TLS support '
        "(no PEM private key in the file)"
    )


def test_garbage_certificate(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")
    server = build(smtpd_tls_cert_file=str(junk))
    assert server.problem == f"error loading certificate (PEM object number 1) from {junk}"


def test_unreadable_key(tmp_path: Path, rsa_leaf: trustme.LeafCert) -> None:
    cert = write_leaf(tmp_path, "rsa", rsa_leaf, key_inside=False)
    not_a_file = tmp_path / "keydir"
    not_a_file.mkdir()  # unreadable for root too, unlike chmod 0
    server = build(smtpd_tls_cert_file=str(cert), smtpd_tls_key_file=str(not_a_file))
    assert server.problem == (
        f'cannot get RSA private key from file "{not_a_file}": disabling TLS support '
        "(Is a directory)"
    )


def test_no_certificates_configured() -> None:
    server = build()
    assert server.context is None
    assert server.problem == NO_SERVER_CERTS
    assert server.problem == "No server certs available. TLS won't be enabled"
