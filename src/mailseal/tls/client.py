"""The SMTP client's ``ssl.SSLContext`` for a ``TlsPolicy``, and the verdict on a handshake.

Contexts (``client_tls`` / ``build_client_context``), cached per policy and the
parameters below, so a delivery does not rebuild one:

* protocols and ciphers through the helpers the server side uses
  (``mailseal.tls.ciphers`` / ``context``); like Postfix's tls_client.c, OpenSSL
  security level 0 for ``may``/``encrypt`` (any encryption beats plaintext) and
  1 once a certificate is checked;
* a client certificate from ``smtp_tls_chain_files``, else ``smtp_tls_cert_file``
  + ``smtp_tls_key_file`` and ``smtp_tls_eccert_file`` + ``smtp_tls_eckey_file``;
* ``tls_ssl_options``; ``smtp_tls_scert_verifydepth`` bounds the verified chain.

Chain verification (the design choice). Postfix completes every handshake
(SSL_VERIFY_NONE plus a callback that records the verdict) and decides
afterwards, so it can log *Trusted* at ``may`` and give a precise reason at
``verify``. Python's ``ssl`` has no verify callback, so the handshake always
runs with ``CERT_NONE`` and no host name check, and the peer's chain is then
verified with ``cryptography.x509.verification`` against the trust anchors:
``smtp_tls_CAfile``/``smtp_tls_CApath`` (plus the system store with
``tls_append_default_CA``); at ``verify``/``secure`` with neither set, the
system store (Postfix would trust nothing then). The caller hangs up when
``matched`` is false. The chain the server sent comes from
``SSLObject.get_unverified_chain()`` (Python 3.13+) or the same method of the
private ``_sslobj`` (3.10-3.12); if neither exists only the leaf is known, and a
server that needs intermediates from its chain then fails to verify. The
library's rules differ a little from OpenSSL's: EKU must allow serverAuth,
CAs must assert basicConstraints, RSA keys need 2048 bits and SHA-1 signatures
are refused.

Trust words (tls_client.c): *Anonymous* (no certificate), *Verified* (the
level's match succeeded: fingerprint, or trusted chain plus name), *Trusted*
(chain verified), else *Untrusted*. Names are matched per ``match_peer_name``
against the DNS subjectAltNames, or the CN when there is none. Failure reasons
follow tls_verify.c tls_log_verify_error(); a name mismatch is OpenSSL's
``num=62:hostname mismatch``, a fingerprint mismatch "not trusted by local or
TLSA policy".
"""

from __future__ import annotations

import datetime
import functools
import ssl
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailseal.config.kinds import ProtocolsKind
from mailseal.tls.chains import ChainError, load_chain_files
from mailseal.tls.ciphers import cipher_string, protocol_window
from mailseal.tls.context import install_chain, set_protocols, ssl_option_bits
from mailseal.tls.levels import TlsLevel
from mailseal.tls.outcome import PeerTrust, TlsOutcome, judge_server_side
from mailseal.tls.policy import match_peer_name

# cryptography (x509, verification) is imported where a certificate is looked at,
# not here: it costs about 10 MB in every process, and a master that delivers
# only locally, or an smtpd process, never needs it.
if TYPE_CHECKING:
    from collections.abc import Sequence

    from cryptography import x509
    from cryptography.x509 import verification

    from mailseal.config.model import Config
    from mailseal.tls.policy import TlsPolicy

__all__ = [
    "HOSTNAME_MISMATCH",
    "NOT_TRUSTED_BY_POLICY",
    "CertFailure",
    "ClientTls",
    "ClientTlsError",
    "ClientTlsOutcome",
    "build_client_context",
    "clear_client_cache",
    "client_tls",
    "judge_client",
    "peer_chain",
    "verify_chain",
]

HOSTNAME_MISMATCH = "num=62:hostname mismatch"  # X509_V_ERR_HOSTNAME_MISMATCH
NOT_TRUSTED_BY_POLICY = "not trusted by local or TLSA policy"  # X509_V_ERR_CERT_UNTRUSTED
_NOT_SERVER = "not designated for use as a server certificate"


class ClientTlsError(Exception):
    """The client cannot do TLS with this policy; the text is Postfix's warning."""


@dataclass(frozen=True)
class CertFailure:
    """Why the server certificate did not verify: ``purpose`` is "server", "CA" or ""."""

    purpose: str
    reason: str


@dataclass(frozen=True)
class ClientTlsOutcome:
    """The client's verdict on one handshake: the facts, and whether the level is satisfied."""

    outcome: TlsOutcome
    matched: bool
    failure: CertFailure | None = None
    peer_names: tuple[str, ...] = ()

    @property
    def trust(self) -> PeerTrust:
        return self.outcome.trust

    @property
    def protocol(self) -> str:
        return self.outcome.protocol

    @property
    def cipher(self) -> str:
        return self.outcome.cipher

    @property
    def bits(self) -> int:
        return self.outcome.bits


@dataclass(frozen=True)
class ClientTls:
    """A ready client context for one policy, with the anchors to judge the peer by."""

    context: ssl.SSLContext
    policy: TlsPolicy
    anchors: verification.Store | None
    verify_depth: int = 9
    warnings: tuple[str, ...] = ()

    def server_hostname(self, *, nexthop: str, mx_host: str) -> str | None:
        """The SNI name for ``wrap_bio(server_hostname=...)``; None sends none."""
        return self.policy.sni(nexthop=nexthop, mx_host=mx_host)

    def judge(
        self,
        ssl_object: ssl.SSLObject | ssl.SSLSocket,
        *,
        nexthop: str,
        mx_host: str,
        from_dns_mx: bool,
        now: datetime.datetime | None = None,
    ) -> ClientTlsOutcome:
        return judge_client(
            ssl_object,
            self.policy,
            nexthop=nexthop,
            mx_host=mx_host,
            from_dns_mx=from_dns_mx,
            anchors=self.anchors,
            verify_depth=self.verify_depth,
            now=now,
        )


# -- contexts --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Recipe:
    """Everything a client context depends on: the cache key."""

    protocols: str
    ciphers: str
    chain_files: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...]
    ca_file: str
    ca_path: str
    system_ca: bool
    options: tuple[str, ...]


def client_tls(policy: TlsPolicy, config: Config) -> ClientTls:
    """The (cached) client context for ``policy``; raises ``ClientTlsError``."""
    if policy.level is TlsLevel.NONE:
        raise ClientTlsError('no TLS at security level "none"')
    recipe = _recipe(policy, config)
    context, anchors, warnings = _build(recipe)
    return ClientTls(context, policy, anchors, config.smtp_tls_scert_verifydepth, warnings)


def build_client_context(policy: TlsPolicy, config: Config) -> ssl.SSLContext:
    """The client ``SSLContext`` for ``policy`` (see ``client_tls``)."""
    return client_tls(policy, config).context


def clear_client_cache() -> None:
    """Forget cached contexts and trust stores (after certificate files changed)."""
    _build.cache_clear()
    _system_anchors.cache_clear()


def _recipe(policy: TlsPolicy, config: Config) -> _Recipe:
    try:
        text = cipher_string(config, "smtp", policy.ciphers, policy.exclude)
    except ValueError as error:
        raise ClientTlsError(str(error)) from None
    # tls_client.c: security level 0 when opportunistic, 1 when authenticating the peer.
    seclevel = 1 if policy.level.checks_certificate and not policy.level.is_dane_based else 0
    pairs = tuple(
        (cert, key or cert)
        for cert, key in (
            (config.smtp_tls_cert_file, config.smtp_tls_key_file),
            (config.smtp_tls_eccert_file, config.smtp_tls_eckey_file),
        )
        if cert
    )
    no_cas = not (config.smtp_tls_CAfile or config.smtp_tls_CApath)
    return _Recipe(
        protocols=policy.protocols,
        ciphers=f"{text}:@SECLEVEL={seclevel}",
        chain_files=tuple(config.smtp_tls_chain_files),
        pairs=() if config.smtp_tls_chain_files else pairs,
        ca_file=config.smtp_tls_CAfile,
        ca_path=config.smtp_tls_CApath,
        system_ca=config.tls_append_default_CA or (no_cas and policy.level.requires_pkix),
        options=tuple(config.tls_ssl_options),
    )


@functools.lru_cache(maxsize=32)
def _build(recipe: _Recipe) -> tuple[ssl.SSLContext, verification.Store | None, tuple[str, ...]]:
    notes: list[str] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # Certificates are judged after the handshake (module docstring), never during it.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    _apply_protocols(context, recipe.protocols, notes)
    try:
        context.set_ciphers(recipe.ciphers)
    except ssl.SSLError:
        raise ClientTlsError(f'error setting cipher list "{recipe.ciphers}"') from None
    bits, unknown = ssl_option_bits(recipe.options)
    context.options |= bits
    notes.extend(f'tls_ssl_options: unknown name "{name}" ignored' for name in unknown)
    _install_client_certs(context, recipe)
    anchors = _load_anchors(recipe.ca_file, recipe.ca_path, system=recipe.system_ca)
    return context, anchors, tuple(notes)


def _apply_protocols(context: ssl.SSLContext, text: str, notes: list[str]) -> None:
    try:
        allowed = ProtocolsKind().parse(text)
        window = protocol_window(allowed)
    except ValueError:
        raise ClientTlsError(f'Invalid TLS protocol list "{text}"') from None
    if window.dropped:
        notes.append(
            f'TLS protocol list "{text}" leaves a gap; enabling {window.lowest} to '
            f"{window.highest}, not {', '.join(window.dropped)}"
        )
    set_protocols(context, allowed)


def _install_client_certs(context: ssl.SSLContext, recipe: _Recipe) -> None:
    """Postfix loads client certificates only when configured; servers rarely ask."""
    try:
        for chain in load_chain_files(recipe.chain_files) if recipe.chain_files else ():
            install_chain(context, chain)
    except (ChainError, OSError, ssl.SSLError) as error:
        raise ClientTlsError(str(error)) from None
    for cert, key in recipe.pairs:
        try:
            context.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as error:
            raise ClientTlsError(
                f'cannot load certificate and key from "{cert}" and "{key}": '
                f"disabling TLS support ({error})"
            ) from None


def _load_anchors(ca_file: str, ca_path: str, *, system: bool) -> verification.Store | None:
    if not (ca_file or ca_path or system):
        return None
    from cryptography import x509
    from cryptography.x509 import verification

    certificates: dict[bytes, x509.Certificate] = {}
    try:
        if ca_file:
            for certificate in x509.load_pem_x509_certificates(Path(ca_file).read_bytes()):
                certificates[_fingerprint(certificate)] = certificate
        if ca_path:
            certificates.update(_directory_anchors(Path(ca_path)))
    except (OSError, ValueError) as error:
        where = ", ".join(
            f"{name}={value}" for name, value in (("CAfile", ca_file), ("CApath", ca_path)) if value
        )
        raise ClientTlsError(
            f"cannot load Certification Authority data, {where}: disabling TLS support ({error})"
        ) from None
    if system:
        certificates.update(_system_anchors())
    return verification.Store(list(certificates.values())) if certificates else None


def _directory_anchors(directory: Path) -> dict[bytes, x509.Certificate]:
    """Every PEM certificate in a CApath-style directory (hash links, bundles, anything)."""
    from cryptography import x509

    found: dict[bytes, x509.Certificate] = {}
    for path in sorted(directory.iterdir()):
        try:
            certificates = x509.load_pem_x509_certificates(path.read_bytes())
        except (OSError, ValueError):
            continue  # not a certificate file: OpenSSL's CApath lookup would skip it too
        found.update((_fingerprint(c), c) for c in certificates)
    return found


@functools.lru_cache(maxsize=1)
def _system_anchors() -> dict[bytes, x509.Certificate]:
    from cryptography import x509

    paths = ssl.get_default_verify_paths()
    if paths.cafile and Path(paths.cafile).is_file():
        certificates = x509.load_pem_x509_certificates(Path(paths.cafile).read_bytes())
        return {_fingerprint(c): c for c in certificates}
    if paths.capath and Path(paths.capath).is_dir():
        return _directory_anchors(Path(paths.capath))
    return {}


# -- judging ------------------------------------------------------------------------------


def peer_chain(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> tuple[x509.Certificate, ...]:
    """The certificates the server sent, leaf first (see the module docstring)."""
    from cryptography import x509

    getter: Any = getattr(ssl_object, "get_unverified_chain", None)
    if getter is None:
        getter = getattr(getattr(ssl_object, "_sslobj", None), "get_unverified_chain", None)
    items: Sequence[Any] = (getter() or []) if getter is not None else []
    if not items:
        leaf = ssl_object.getpeercert(binary_form=True)
        return (x509.load_der_x509_certificate(leaf),) if leaf else ()
    der_encoding = getattr(ssl, "_ssl").ENCODING_DER  # noqa: B009 - private constant
    return tuple(
        x509.load_der_x509_certificate(
            item if isinstance(item, bytes) else item.public_bytes(der_encoding)
        )
        for item in items
    )


def judge_client(
    ssl_object: ssl.SSLObject | ssl.SSLSocket,
    policy: TlsPolicy,
    *,
    nexthop: str,
    mx_host: str,
    from_dns_mx: bool,
    anchors: verification.Store | None = None,
    verify_depth: int = 9,
    now: datetime.datetime | None = None,
) -> ClientTlsOutcome:
    """Judge a finished client handshake against ``policy`` (tls_client.c verify_extract_*).

    ``nexthop``: the next-hop destination (``[ ]``/port are stripped for matching);
    ``mx_host``: the server's host name; ``from_dns_mx``: that name came from an
    MX lookup. ``anchors``: the CAs trusted (None: none).
    """
    from mailseal.tls.certs import certificate_names

    base = judge_server_side(ssl_object, digest=policy.fingerprint_digest, ca_configured=False)
    chain = peer_chain(ssl_object)
    # DANE is not implemented: "dane" is judged as "may" (the caller uses it so).
    must_match = policy.level.checks_certificate and not policy.level.is_dane_based
    if not chain:
        return ClientTlsOutcome(base, matched=not must_match)
    when = now or datetime.datetime.now(datetime.UTC)
    failure = verify_chain(chain, anchors, now=when, depth=verify_depth)
    names = certificate_names(chain[0])  # DNS subjectAltNames, else the CN
    trusted, shown, matched = failure is None, base.peer_subject_cn, not must_match
    if policy.level is TlsLevel.FINGERPRINT:
        wanted = {item.upper() for item in policy.matches}
        matched = bool({base.peer_fingerprint, base.peer_pkey_fingerprint} & wanted)
        failure = None if matched else CertFailure("", NOT_TRUSTED_BY_POLICY)
    elif policy.level.requires_pkix and trusted:
        found = match_peer_name(
            names, policy, nexthop=nexthop, mx_host=mx_host, from_dns_mx=from_dns_mx
        )
        matched = found is not None
        # tls_client.c logs the matched DNS name (else the first one) as the subject CN.
        shown = found or (names[0] if names else shown)
        failure = None if matched else CertFailure("server", HOSTNAME_MISMATCH)
    if must_match and matched:
        trust = PeerTrust.VERIFIED
    elif policy.level.requires_pkix and not matched:
        # Postfix 3.x hands the expected names to OpenSSL's chain verification at
        # verify/secure, so a name mismatch fails verification and logs "Untrusted".
        trust = PeerTrust.UNTRUSTED
    else:
        trust = PeerTrust.TRUSTED if trusted else PeerTrust.UNTRUSTED
    outcome = replace(base, trust=trust, peer_subject_cn=shown)
    return ClientTlsOutcome(outcome, matched=matched, failure=failure, peer_names=names)


def verify_chain(
    chain: Sequence[x509.Certificate],
    anchors: verification.Store | None,
    *,
    now: datetime.datetime,
    depth: int = 9,
) -> CertFailure | None:
    """None when ``chain`` (leaf first) leads to one of ``anchors``; else Postfix's reason."""
    if anchors is not None:
        from cryptography.x509 import verification

        ca_policy, ee_policy = _extension_policies()
        verifier = (
            verification.PolicyBuilder()
            .store(anchors)
            .time(now)
            .max_chain_depth(depth)
            .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
            .build_client_verifier()
        )
        try:
            verifier.verify(chain[0], list(chain[1:]))
        except verification.VerificationError as error:
            return _classify(chain, now, str(error))
        return None
    return _classify(chain, now, "")


def _classify(
    chain: Sequence[x509.Certificate], now: datetime.datetime, detail: str
) -> CertFailure:
    """tls_log_verify_error(): OpenSSL reports the problem nearest the leaf."""
    from mailseal.tls.certs import name_oneline

    if _NOT_SERVER in detail:
        return CertFailure("", _NOT_SERVER)
    for index, certificate in enumerate(chain):
        purpose = "CA" if index else "server"
        if certificate.not_valid_after_utc < now:
            return CertFailure(purpose, "certificate has expired")
        if certificate.not_valid_before_utc > now:
            return CertFailure(purpose, "certificate not yet valid")
    leaf = chain[0]
    if len(chain) == 1 and leaf.issuer == leaf.subject:
        return CertFailure("", "self-signed certificate")
    if detail and "candidates exhausted" not in detail:
        return CertFailure("server", detail.removeprefix("validation failed: "))
    return CertFailure("", f"untrusted issuer {name_oneline(chain[-1].issuer)}")


def _server_usage(
    policy: verification.Policy, certificate: x509.Certificate, eku: x509.ExtendedKeyUsage | None
) -> None:
    from cryptography.x509.oid import ExtendedKeyUsageOID

    # OpenSSL's "sslserver" purpose: an EKU, when present, must allow TLS server use.
    if eku is not None and not (
        ExtendedKeyUsageOID.SERVER_AUTH in eku or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in eku
    ):
        raise ValueError(_NOT_SERVER)


def _fingerprint(certificate: x509.Certificate) -> bytes:
    from cryptography.hazmat.primitives import hashes

    return certificate.fingerprint(hashes.SHA256())


@functools.cache
def _extension_policies() -> tuple[verification.ExtensionPolicy, verification.ExtensionPolicy]:
    """Closer to OpenSSL than the Web PKI defaults: private CAs rarely carry every extension."""
    from cryptography import x509
    from cryptography.x509 import verification

    ca_policy = verification.ExtensionPolicy.permit_all().require_present(
        x509.BasicConstraints, verification.Criticality.AGNOSTIC, None
    )
    ee_policy = verification.ExtensionPolicy.permit_all().may_be_present(
        x509.ExtendedKeyUsage, verification.Criticality.AGNOSTIC, _server_usage
    )
    return ca_policy, ee_policy
