"""Server contexts from the seed configuration: protocols, ciphers, tickets, options.

Every protocol claim is checked with a real handshake against a client that
would happily speak the refused version.
"""

import ssl
from pathlib import Path

import pytest
import trustme
from tls_helpers import LEGACY_OK, SEED_TLS, client_context, handshake, make_config, write_leaf

from mailseal.tls.levels import TlsLevel
from mailseal.tls.server import ServerTls, build_server_tls

V = ssl.TLSVersion


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def cert_settings(tmp_path: Path, ca: trustme.CA) -> dict[str, str]:
    leaf = ca.issue_cert("mail.example.com", key_type=trustme.KeyType.RSA)
    return {"smtpd_tls_cert_file": str(write_leaf(tmp_path, "rsa", leaf, key_inside=True))}


def build(cert_settings: dict[str, str], **settings: str) -> ServerTls:
    server = build_server_tls(make_config(**{**SEED_TLS, **cert_settings, **settings}))
    assert server.problem is None, server.problem
    assert server.context is not None
    return server


def server_context(cert_settings: dict[str, str], **settings: str) -> ssl.SSLContext:
    context = build(cert_settings, **settings).context
    assert context is not None
    return context


def negotiated(client: ssl.SSLContext, server: ssl.SSLContext) -> str | None:
    _, server_side = handshake(client, server)
    return server_side.version()


def test_level_none_offers_nothing() -> None:
    server = build_server_tls(make_config(smtpd_tls_security_level="none"))
    assert server == ServerTls(
        context=None,
        level=TlsLevel.NONE,
        problem=None,
        ask_ccert=False,
        loglevel=0,
        mandatory=False,
    )
    assert not server.offered


def test_seed_may_accepts_tls12_and_tls13(cert_settings: dict[str, str], ca: trustme.CA) -> None:
    server = build(cert_settings)
    assert server.level is TlsLevel.MAY and not server.mandatory
    assert server.protocols == ("TLSv1.1", "TLSv1.2", "TLSv1.3")
    assert server.context is not None
    assert negotiated(client_context(ca, maximum=V.TLSv1_3), server.context) == "TLSv1.3"
    assert negotiated(client_context(ca, maximum=V.TLSv1_2), server.context) == "TLSv1.2"


def test_seed_may_refuses_tlsv1_by_protocol(cert_settings: dict[str, str]) -> None:
    # Security level 0 on both sides, so only the protocol setting can refuse.
    server = server_context(cert_settings, tls_high_cipherlist=LEGACY_OK)
    assert server.minimum_version is V.TLSv1_1
    legacy = client_context(minimum=V.TLSv1, maximum=V.TLSv1_1, ciphers="ALL:@SECLEVEL=0")
    assert negotiated(legacy, server) == "TLSv1.1"
    tls10 = client_context(minimum=V.TLSv1, maximum=V.TLSv1, ciphers="ALL:@SECLEVEL=0")
    with pytest.raises(ssl.SSLError, match=r"UNSUPPORTED_PROTOCOL|unsupported protocol"):
        handshake(tls10, server)


def test_seed_encrypt_refuses_tlsv1_1(cert_settings: dict[str, str], ca: trustme.CA) -> None:
    server = server_context(
        cert_settings, smtpd_tls_security_level="encrypt", tls_high_cipherlist=LEGACY_OK
    )
    assert (server.minimum_version, server.maximum_version) == (V.TLSv1_2, V.TLSv1_3)
    for top in (V.TLSv1, V.TLSv1_1):
        old = client_context(minimum=V.TLSv1, maximum=top, ciphers="ALL:@SECLEVEL=0")
        with pytest.raises(ssl.SSLError):
            handshake(old, server)
    assert negotiated(client_context(ca, maximum=V.TLSv1_2), server) == "TLSv1.2"
    assert negotiated(client_context(ca), server) == "TLSv1.3"


def test_at_least_tls13_refuses_tls12(cert_settings: dict[str, str], ca: trustme.CA) -> None:
    server = server_context(cert_settings, smtpd_tls_protocols=">=TLSv1.3")
    with pytest.raises(ssl.SSLError):
        handshake(client_context(ca, maximum=V.TLSv1_2), server)
    assert negotiated(client_context(ca), server) == "TLSv1.3"


def test_protocol_hole_is_warned_about(cert_settings: dict[str, str], ca: trustme.CA) -> None:
    server = build(cert_settings, smtpd_tls_protocols="!SSLv2, !SSLv3, !TLSv1.2")
    assert server.protocols == ("TLSv1.3",)
    assert any("leaves a gap" in w and "not TLSv1, TLSv1.1" in w for w in server.warnings)
    assert server.context is not None
    with pytest.raises(ssl.SSLError):
        handshake(client_context(ca, maximum=V.TLSv1_2), server.context)


def test_no_tls_protocol_left_is_a_problem(cert_settings: dict[str, str]) -> None:
    config = make_config(**{**SEED_TLS, **cert_settings, "smtpd_tls_protocols": "SSLv3"})
    server = build_server_tls(config)
    assert server.context is None
    assert server.problem == 'Invalid TLS protocol list "SSLv3": disabling TLS support'


WEAK = ("MD5", "RC4", "DES-CBC3", "3DES", "NULL")


def cipher_names(context: ssl.SSLContext) -> list[str]:
    return [str(entry["name"]) for entry in context.get_ciphers()]


def anonymous(context: ssl.SSLContext) -> list[str]:
    return [str(e["name"]) for e in context.get_ciphers() if "Au=None" in str(e["description"])]


def test_high_grade_with_seed_exclusions_leaves_no_weak_cipher(
    cert_settings: dict[str, str],
) -> None:
    server = server_context(cert_settings, smtpd_tls_security_level="encrypt")
    names = cipher_names(server)
    assert "ECDHE-RSA-AES256-GCM-SHA384" in names
    assert "TLS_AES_256_GCM_SHA384" in names  # TLS 1.3 suites stay OpenSSL's
    assert not [name for name in names if any(weak in name for weak in WEAK)]
    assert anonymous(server) == []


def test_opportunistic_grade_keeps_anonymous_ciphers_as_postfix(
    cert_settings: dict[str, str],
) -> None:
    # At "may" only smtpd_tls_exclude_ciphers applies (empty in the seed): Postfix
    # offers anonymous ciphers to clients that do not authenticate servers anyway.
    server = server_context(cert_settings)
    assert anonymous(server)
    excluded = server_context(cert_settings, smtpd_tls_exclude_ciphers="aNULL")
    assert anonymous(excluded) == []


def test_bad_cipher_list_is_a_problem(cert_settings: dict[str, str]) -> None:
    config = make_config(**{**SEED_TLS, **cert_settings, "tls_high_cipherlist": "NOSUCHCIPHER"})
    server = build_server_tls(config)
    assert server.context is None
    assert server.problem is not None
    assert server.problem.startswith('smtpd_tls_ciphers: error setting cipher grade: "high"')


def test_eecdh_none_excludes_ecdhe(cert_settings: dict[str, str]) -> None:
    server = server_context(cert_settings, smtpd_tls_eecdh_grade="none")
    # PSK suites cannot be negotiated without a PSK callback; ignore them.
    names = [name for name in cipher_names(server) if "PSK" not in name]
    assert not [name for name in names if name.startswith(("ECDHE", "AECDH"))]
    assert "DHE-RSA-AES256-GCM-SHA384" in names


def test_server_preference_follows_tls_preempt_cipherlist(cert_settings: dict[str, str]) -> None:
    assert not server_context(cert_settings).options & ssl.OP_CIPHER_SERVER_PREFERENCE
    preempt = server_context(cert_settings, tls_preempt_cipherlist="yes")
    assert preempt.options & ssl.OP_CIPHER_SERVER_PREFERENCE


def resumed(server: ssl.SSLContext, ca: trustme.CA, top: ssl.TLSVersion) -> tuple[bool, bool]:
    """(first session carried a ticket, second handshake resumed it)."""
    client = client_context(ca, maximum=top)
    first, _ = handshake(client, server)
    session = first.session
    assert session is not None
    _, again = handshake(client, server, session=session)
    return session.has_ticket, again.session_reused


def test_tickets_on_by_default(cert_settings: dict[str, str], ca: trustme.CA) -> None:
    server = server_context(cert_settings)
    assert not server.options & ssl.OP_NO_TICKET
    assert server.num_tickets == 1  # one TLS 1.3 ticket per handshake, as Postfix sends
    assert resumed(server, ca, V.TLSv1_3) == (True, True)
    assert resumed(server, ca, V.TLSv1_2) == (True, True)


def test_cache_timeout_zero_turns_tickets_off(
    cert_settings: dict[str, str], ca: trustme.CA
) -> None:
    server = server_context(cert_settings, smtpd_tls_session_cache_timeout="0")
    assert server.options & ssl.OP_NO_TICKET
    assert resumed(server, ca, V.TLSv1_3) == (False, False)
    has_ticket, _ = resumed(server, ca, V.TLSv1_2)
    assert has_ticket is False


def test_empty_ticket_cipher_turns_tickets_off(cert_settings: dict[str, str]) -> None:
    server = server_context(cert_settings, tls_session_ticket_cipher="")
    assert server.options & ssl.OP_NO_TICKET


def test_tls_ssl_options(cert_settings: dict[str, str]) -> None:
    server = build(cert_settings, tls_ssl_options="NO_RENEGOTIATION, no_such_option")
    assert server.context is not None
    assert server.context.options & ssl.OP_NO_RENEGOTIATION
    assert 'tls_ssl_options: unknown name "no_such_option" ignored' in server.warnings


def test_wrappermode_is_mandatory(cert_settings: dict[str, str]) -> None:
    server = build(cert_settings, smtpd_tls_wrappermode="yes")
    assert server.level is TlsLevel.ENCRYPT
    assert server.mandatory
    assert server.protocols == ("TLSv1.2", "TLSv1.3")


def test_mandatory_can_be_forced(cert_settings: dict[str, str]) -> None:
    config = make_config(**{**SEED_TLS, **cert_settings})
    assert build_server_tls(config, mandatory=True).protocols == ("TLSv1.2", "TLSv1.3")
    assert build_server_tls(config, mandatory=False).protocols[0] == "TLSv1.1"


def test_dh_parameters_file_problems_are_warnings(cert_settings: dict[str, str]) -> None:
    server = build(cert_settings, smtpd_tls_dh1024_param_file="/nonexistent/dh.pem")
    assert server.offered
    assert any(
        w.startswith("cannot load DH parameters from file /nonexistent") for w in server.warnings
    )
