"""Parameters of the SMTP server's TLS (``smtpd_tls_*``), as in postconf(5).

Defaults are Postfix 3.7's; the grades and protocol names are interpreted by
``mailseal.tls``. The seed tutorial sets the certificate files, the CA file,
the security level, ``smtpd_tls_auth_only``, the log level and an empty
session cache database from this family.
"""

from __future__ import annotations

from mailseal.config.kinds import (
    BoolKind,
    EnumKind,
    IntKind,
    ListKind,
    ProtocolsKind,
    StrKind,
    TableListKind,
    TableRef,
    TimeKind,
    TlsProtocolRange,
)
from mailseal.config.param import Param

__all__ = ["CIPHER_GRADES", "SERVER_TLS_LEVELS", "TlsServerParams"]

# Postfix's server side knows only these levels (tls_level.c; smtpd.c rejects the rest).
SERVER_TLS_LEVELS = ("", "none", "may", "encrypt")
CIPHER_GRADES = ("export", "low", "medium", "high", "null")

_FINGERPRINT_DIGEST = "${{$compatibility_level} <level {3.6} ? {md5} : {sha256}}"


class TlsServerParams:
    """smtpd_tls_*: certificates, levels, protocols, ciphers, logging, caching."""

    __slots__ = ()

    smtpd_tls_security_level: Param[str] = Param(
        EnumKind(SERVER_TLS_LEVELS),
        "",
        "TLS for incoming SMTP: none, may (offer STARTTLS) or encrypt (require it).",
    )
    smtpd_tls_cert_file: Param[str] = Param(
        StrKind(), "", "PEM file with the server's RSA certificate (and its chain)."
    )
    smtpd_tls_key_file: Param[str] = Param(
        StrKind(), "$smtpd_tls_cert_file", "PEM file with the private key of smtpd_tls_cert_file."
    )
    smtpd_tls_eccert_file: Param[str] = Param(
        StrKind(), "", "PEM file with the server's ECDSA certificate, served beside the RSA one."
    )
    smtpd_tls_eckey_file: Param[str] = Param(
        StrKind(),
        "$smtpd_tls_eccert_file",
        "PEM file with the private key of smtpd_tls_eccert_file.",
    )
    smtpd_tls_dcert_file: Param[str] = Param(
        StrKind(), "", "PEM file with a DSA certificate (obsolete; accepted and ignored)."
    )
    smtpd_tls_dkey_file: Param[str] = Param(
        StrKind(),
        "$smtpd_tls_dcert_file",
        "PEM file with the key of smtpd_tls_dcert_file (obsolete).",
    )
    smtpd_tls_chain_files: Param[tuple[str, ...]] = Param(
        ListKind(),
        "",
        "PEM files each holding a key then its certificate chain; preferred over cert/key pairs.",
    )
    smtpd_tls_CAfile: Param[str] = Param(
        StrKind(), "", "PEM file of CA certificates trusted for client certificates."
    )
    smtpd_tls_CApath: Param[str] = Param(
        StrKind(), "", "Directory of hashed CA certificates trusted for client certificates."
    )
    smtpd_tls_protocols: Param[TlsProtocolRange] = Param(
        ProtocolsKind(),
        ">=TLSv1",
        "TLS protocols allowed with opportunistic TLS (!NAME exclusions or >=NAME bounds).",
    )
    smtpd_tls_mandatory_protocols: Param[TlsProtocolRange] = Param(
        ProtocolsKind(), ">=TLSv1", "TLS protocols allowed when TLS is mandatory (level encrypt)."
    )
    smtpd_tls_ciphers: Param[str] = Param(
        EnumKind(CIPHER_GRADES), "medium", "Cipher grade with opportunistic TLS."
    )
    smtpd_tls_mandatory_ciphers: Param[str] = Param(
        EnumKind(CIPHER_GRADES), "medium", "Cipher grade when TLS is mandatory."
    )
    smtpd_tls_exclude_ciphers: Param[tuple[str, ...]] = Param(
        ListKind(), "", "OpenSSL cipher names or classes removed at every grade (e.g. aNULL, RC4)."
    )
    smtpd_tls_mandatory_exclude_ciphers: Param[tuple[str, ...]] = Param(
        ListKind(), "", "Cipher names or classes additionally removed when TLS is mandatory."
    )
    smtpd_tls_eecdh_grade: Param[str] = Param(
        EnumKind(("auto", "none", "strong", "ultra")),
        "auto",
        "Elliptic-curve key exchange: auto lets OpenSSL negotiate from tls_eecdh_auto_curves.",
    )
    smtpd_tls_dh1024_param_file: Param[str] = Param(
        StrKind(),
        "",
        "PEM file with DH parameters for non-elliptic key exchange (empty: built in).",
    )
    smtpd_tls_loglevel: Param[int] = Param(
        IntKind(0, 4), "0", "TLS logging: 0 none, 1 summary per session, 2 handshake progress."
    )
    smtpd_tls_session_cache_database: Param[str] = Param(
        StrKind(),
        "",
        "Server session cache table; empty keeps sessions in RFC 5077 tickets instead.",
    )
    smtpd_tls_session_cache_timeout: Param[int] = Param(
        TimeKind("s", 0, 8640000),
        "3600s",
        "Lifetime of cached sessions and tickets; 0 turns session resumption off.",
    )
    smtpd_tls_always_issue_session_ids: Param[bool] = Param(
        BoolKind(), "yes", "Issue session IDs even when no session cache is configured."
    )
    smtpd_tls_auth_only: Param[bool] = Param(
        BoolKind(), "no", "Offer and accept SASL AUTH only after TLS is established."
    )
    smtpd_tls_ask_ccert: Param[bool] = Param(
        BoolKind(), "no", "Ask clients for a certificate (its fingerprint is logged)."
    )
    smtpd_tls_req_ccert: Param[bool] = Param(
        BoolKind(), "no", "Require a trusted client certificate (only with level encrypt)."
    )
    smtpd_tls_ccert_verifydepth: Param[int] = Param(
        IntKind(1), "9", "Longest client certificate chain that is verified."
    )
    smtpd_tls_received_header: Param[bool] = Param(
        BoolKind(), "no", "Record protocol, cipher and client certificate in the Received: header."
    )
    smtpd_tls_wrappermode: Param[bool] = Param(
        BoolKind(), "no", "Implicit TLS: handshake before the greeting (port 465, RFC 8314)."
    )
    relay_clientcerts: Param[tuple[TableRef, ...]] = Param(
        TableListKind(),
        "",
        "Client certificate fingerprints that permit_tls_clientcerts lets relay.",
    )
    smtpd_tls_fingerprint_digest: Param[str] = Param(
        EnumKind(("md5", "sha1", "sha256", "sha384", "sha512")),
        _FINGERPRINT_DIGEST,
        "Digest used for client certificate fingerprints in logs and check_ccert_access.",
    )
