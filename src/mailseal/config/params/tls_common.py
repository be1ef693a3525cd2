"""TLS parameters shared by the server and the client (``tls_*``), as in postconf(5).

Defaults are Postfix 3.7's. The cipher lists are the OpenSSL cipher strings
behind the grades that ``smtpd_tls_ciphers`` and ``smtp_tls_ciphers`` name;
``mailseal.tls`` turns them into an SSL context. ``openssl_path`` names the
command that key and certificate helper commands run.
"""

from __future__ import annotations

from mailseal.config.kinds import (
    BoolKind,
    IntKind,
    ListKind,
    StrKind,
    TableListKind,
    TableRef,
    TimeKind,
)
from mailseal.config.param import Param

__all__ = ["TlsCommonParams"]


class TlsCommonParams:
    """tls_*: cipher grade lists, curves, OpenSSL options, SNI, DANE digests, randomness."""

    __slots__ = ()

    # -- cipher grades ---------------------------------------------------------------

    tls_high_cipherlist: Param[str] = Param(
        StrKind(nonempty=True),
        "aNULL:-aNULL:HIGH:@STRENGTH",
        "OpenSSL cipher string of the high grade.",
    )
    tls_medium_cipherlist: Param[str] = Param(
        StrKind(nonempty=True),
        "aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH",
        "OpenSSL cipher string of the medium grade (the default grade).",
    )
    tls_low_cipherlist: Param[str] = Param(
        StrKind(nonempty=True),
        "aNULL:-aNULL:HIGH:MEDIUM:LOW:+RC4:@STRENGTH",
        "OpenSSL cipher string of the low grade.",
    )
    tls_export_cipherlist: Param[str] = Param(
        StrKind(nonempty=True),
        "aNULL:-aNULL:HIGH:MEDIUM:LOW:EXPORT:+RC4:@STRENGTH",
        "OpenSSL cipher string of the export grade.",
    )
    tls_null_cipherlist: Param[str] = Param(
        StrKind(nonempty=True),
        "eNULL:!aNULL",
        "OpenSSL cipher string of the null grade (authentication without encryption).",
    )
    tls_preempt_cipherlist: Param[bool] = Param(
        BoolKind(), "no", "Let the server's cipher order win over the client's (server side)."
    )

    # -- key exchange ---------------------------------------------------------------

    tls_eecdh_auto_curves: Param[tuple[str, ...]] = Param(
        ListKind(),
        "X25519 X448 prime256v1 secp521r1 secp384r1",
        "Elliptic curves offered for key exchange, most preferred first.",
    )
    tls_eecdh_strong_curve: Param[str] = Param(
        StrKind(), "prime256v1", "Curve used by the obsolete eecdh grade strong."
    )
    tls_eecdh_ultra_curve: Param[str] = Param(
        StrKind(), "secp384r1", "Curve used by the obsolete eecdh grade ultra."
    )

    # -- OpenSSL behaviour ---------------------------------------------------------------

    tls_ssl_options: Param[tuple[str, ...]] = Param(
        ListKind(), "", "OpenSSL options to turn on, by name (e.g. NO_TICKET) or as a bit mask."
    )
    tls_disable_workarounds: Param[tuple[str, ...]] = Param(
        ListKind(), "", "OpenSSL bug workarounds to turn off, by name or as a bit mask."
    )
    tls_config_file: Param[str] = Param(
        StrKind(nonempty=True),
        "default",
        "OpenSSL configuration file: default (system openssl.cnf), none, or a path.",
    )
    tls_config_name: Param[str] = Param(
        StrKind(), "", "Section of tls_config_file to apply; empty uses openssl_conf."
    )
    tls_append_default_CA: Param[bool] = Param(
        BoolKind(), "no", "Also trust OpenSSL's system CAs besides the configured CAfile/CApath."
    )
    tls_fast_shutdown_enable: Param[bool] = Param(
        BoolKind(), "yes", "Close TLS without waiting for the peer's close_notify."
    )
    tls_wildcard_matches_multiple_labels: Param[bool] = Param(
        BoolKind(), "yes", "Let a certificate's *.example.com also match a.b.example.com."
    )
    tls_legacy_public_key_fingerprints: Param[bool] = Param(
        BoolKind(), "no", "Compute public-key fingerprints the wrong way of Postfix 2.9.0-2.9.5."
    )
    tls_session_ticket_cipher: Param[str] = Param(
        StrKind(), "aes-256-cbc", "Cipher protecting session tickets; empty turns tickets off."
    )

    # -- SNI and DANE ----------------------------------------------------------------

    tls_server_sni_maps: Param[tuple[TableRef, ...]] = Param(
        TableListKind(), "", "Server key and certificate chain per SNI name sent by clients."
    )
    tls_dane_digests: Param[tuple[str, ...]] = Param(
        ListKind(), "sha512 sha256", "Digests accepted in DANE TLSA records, best first."
    )

    # -- randomness ------------------------------------------------------------------

    tls_random_source: Param[str] = Param(
        StrKind(), "dev:/dev/urandom", "Entropy source (dev:/path or egd:/path) for the TLS PRNG."
    )
    tls_random_bytes: Param[int] = Param(
        IntKind(1), "32", "Bytes read from tls_random_source at each reseed."
    )
    tls_daemon_random_bytes: Param[int] = Param(
        IntKind(1), "32", "Random bytes each TLS-using process gets to seed its PRNG."
    )
    tls_random_exchange_name: Param[str] = Param(
        StrKind(), "${data_directory}/prng_exch", "File where the PRNG state is saved."
    )
    tls_random_prng_update_period: Param[int] = Param(
        TimeKind("s", 1), "3600s", "How often the PRNG state is saved."
    )
    tls_random_reseed_period: Param[int] = Param(
        TimeKind("s", 1), "3600s", "Longest time between reseeds from tls_random_source."
    )

    # -- tools -----------------------------------------------------------------------

    openssl_path: Param[str] = Param(
        StrKind(nonempty=True),
        "openssl",
        "The openssl(1) command, used by key and certificate helpers.",
    )
