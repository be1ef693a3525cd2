"""Parameters of the SMTP client's TLS (``smtp_tls_*``), as in postconf(5).

Defaults are Postfix 3.7's except ``smtp_tls_security_level``: mailseal tracks
Postfix 3.11, where the client default became ``may`` (opportunistic TLS);
below compatibility level 3.11 it stays empty, as before. The grades and
protocol names are shared with the server side and interpreted by
``mailseal.tls``.
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
from mailseal.config.params.tls_server import CIPHER_GRADES

__all__ = ["CLIENT_TLS_LEVELS", "TlsClientParams"]

# The client's levels (tls_level.c); "" means "decided by smtp_use_tls/smtp_enforce_tls".
CLIENT_TLS_LEVELS = (
    "",
    "none",
    "may",
    "encrypt",
    "dane",
    "dane-only",
    "fingerprint",
    "verify",
    "secure",
)

_SECURITY_LEVEL = "${{$compatibility_level} <level {3.11} ? {} : {may}}"
_FINGERPRINT_DIGEST = "${{$compatibility_level} <level {3.6} ? {md5} : {sha256}}"
_DANE_INSECURE_MX = "${{$smtp_tls_security_level} == {dane} ? {dane} : {may}}"


class TlsClientParams:
    """smtp_tls_*: levels, policies, verification, certificates, protocols, ciphers."""

    __slots__ = ()

    # -- levels and policy -------------------------------------------------------------

    smtp_tls_security_level: Param[str] = Param(
        EnumKind(CLIENT_TLS_LEVELS),
        _SECURITY_LEVEL,
        "Default TLS for outgoing SMTP: none, may, encrypt, dane, verify, secure...",
    )
    smtp_tls_policy_maps: Param[tuple[TableRef, ...]] = Param(
        TableListKind(), "", "Per-destination TLS level and options, overriding the default."
    )
    smtp_tls_per_site: Param[tuple[TableRef, ...]] = Param(
        TableListKind(), "", "Obsolete per-site TLS policy (NONE, MAY, MUST...); use policy maps."
    )
    smtp_tls_note_starttls_offer: Param[bool] = Param(
        BoolKind(), "no", "Log the servers that offer STARTTLS while TLS is not in use."
    )
    smtp_tls_wrappermode: Param[bool] = Param(
        BoolKind(), "no", "Implicit TLS: handshake at connect time (port 465, RFC 8314)."
    )
    smtp_tls_block_early_mail_reply: Param[bool] = Param(
        BoolKind(), "no", "Treat replies that arrive before MAIL FROM is sent as an attack."
    )
    smtp_tls_connection_reuse: Param[bool] = Param(
        BoolKind(), "no", "Reuse TLS connections for several deliveries."
    )

    # -- server verification ---------------------------------------------------------

    smtp_tls_verify_cert_match: Param[tuple[str, ...]] = Param(
        ListKind(), "hostname", "Names the certificate must match at level verify."
    )
    smtp_tls_secure_cert_match: Param[tuple[str, ...]] = Param(
        ListKind(), "nexthop, dot-nexthop", "Names the certificate must match at level secure."
    )
    smtp_tls_fingerprint_cert_match: Param[tuple[str, ...]] = Param(
        ListKind(), "", "Certificate or public-key fingerprints accepted at level fingerprint."
    )
    smtp_tls_fingerprint_digest: Param[str] = Param(
        EnumKind(("md5", "sha1", "sha256", "sha384", "sha512")),
        _FINGERPRINT_DIGEST,
        "Digest used for server certificate fingerprints in logs and level fingerprint.",
    )
    smtp_tls_enforce_peername: Param[bool] = Param(
        BoolKind(),
        "yes",
        "Legacy: with smtp_enforce_tls, require the server name in its certificate.",
    )
    smtp_tls_scert_verifydepth: Param[int] = Param(
        IntKind(1), "9", "Longest server certificate chain that is verified."
    )
    smtp_tls_servername: Param[str] = Param(
        StrKind(), "", "SNI name to send (hostname, nexthop or a name); empty sends none."
    )
    smtp_tls_CAfile: Param[str] = Param(
        StrKind(), "", "PEM file of CA certificates trusted for server certificates."
    )
    smtp_tls_CApath: Param[str] = Param(
        StrKind(), "", "Directory of hashed CA certificates trusted for server certificates."
    )
    smtp_tls_trust_anchor_file: Param[tuple[str, ...]] = Param(
        ListKind(), "", "PEM files of trust anchors that replace the CAs for verification."
    )

    # -- DANE ------------------------------------------------------------------------

    smtp_tls_dane_insecure_mx_policy: Param[str] = Param(
        EnumKind(("dane", "may")),
        _DANE_INSECURE_MX,
        "TLS for MX hosts found without DNSSEC when the level is dane.",
    )
    smtp_tls_force_insecure_host_tlsa_lookup: Param[bool] = Param(
        BoolKind(), "no", "Look up TLSA records even for hosts found without DNSSEC."
    )

    # -- client certificates -------------------------------------------------------------

    smtp_tls_cert_file: Param[str] = Param(
        StrKind(), "", "PEM file with the client's RSA certificate, for servers that ask."
    )
    smtp_tls_key_file: Param[str] = Param(
        StrKind(), "$smtp_tls_cert_file", "PEM file with the private key of smtp_tls_cert_file."
    )
    smtp_tls_eccert_file: Param[str] = Param(
        StrKind(), "", "PEM file with the client's ECDSA certificate."
    )
    smtp_tls_eckey_file: Param[str] = Param(
        StrKind(), "$smtp_tls_eccert_file", "PEM file with the private key of smtp_tls_eccert_file."
    )
    smtp_tls_dcert_file: Param[str] = Param(
        StrKind(), "", "PEM file with a DSA client certificate (obsolete; accepted and ignored)."
    )
    smtp_tls_dkey_file: Param[str] = Param(
        StrKind(),
        "$smtp_tls_dcert_file",
        "PEM file with the key of smtp_tls_dcert_file (obsolete).",
    )
    smtp_tls_chain_files: Param[tuple[str, ...]] = Param(
        ListKind(),
        "",
        "PEM files each holding a key then its certificate chain; preferred over cert/key pairs.",
    )

    # -- protocols and ciphers -----------------------------------------------------------

    smtp_tls_protocols: Param[TlsProtocolRange] = Param(
        ProtocolsKind(),
        ">=TLSv1",
        "TLS protocols allowed with opportunistic TLS (!NAME exclusions or >=NAME bounds).",
    )
    smtp_tls_mandatory_protocols: Param[TlsProtocolRange] = Param(
        ProtocolsKind(), ">=TLSv1", "TLS protocols allowed when TLS is mandatory."
    )
    smtp_tls_ciphers: Param[str] = Param(
        EnumKind(CIPHER_GRADES), "medium", "Cipher grade with opportunistic TLS."
    )
    smtp_tls_mandatory_ciphers: Param[str] = Param(
        EnumKind(CIPHER_GRADES), "medium", "Cipher grade when TLS is mandatory."
    )
    smtp_tls_exclude_ciphers: Param[tuple[str, ...]] = Param(
        ListKind(), "", "OpenSSL cipher names or classes removed at every grade."
    )
    smtp_tls_mandatory_exclude_ciphers: Param[tuple[str, ...]] = Param(
        ListKind(), "", "Cipher names or classes additionally removed when TLS is mandatory."
    )

    # -- logging and session cache -------------------------------------------------------

    smtp_tls_loglevel: Param[int] = Param(
        IntKind(0, 4), "0", "TLS logging: 0 none, 1 summary per session, 2 handshake progress."
    )
    smtp_tls_session_cache_database: Param[str] = Param(
        StrKind(), "", "Client session cache table (e.g. btree:...); empty: no resumption."
    )
    smtp_tls_session_cache_timeout: Param[int] = Param(
        TimeKind("s", 0, 8640000),
        "3600s",
        "Lifetime of cached client sessions; 0 turns session resumption off.",
    )
