"""The SMTP server's ``ssl.SSLContext``, built from Postfix's ``smtpd_tls_*`` parameters.

``build_server_tls(config)`` never raises: a configuration TLS cannot run with
(missing or unreadable file, key that does not match, no usable protocol or
cipher) gives ``ServerTls(context=None, problem=...)`` with Postfix's warning
text; the driver logs it, keeps serving plaintext and answers STARTTLS with
``454 4.7.0 TLS not available due to local problem``.

How the parameters map (smtpd.c, tls_server.c, postconf(5)):

* Level: ``server_level`` (security level, obsolete use/enforce switches, wrapper mode).
  *Mandatory* (encrypt) selects ``smtpd_tls_mandatory_protocols`` and
  ``smtpd_tls_mandatory_ciphers``; otherwise ``smtpd_tls_protocols`` and
  ``smtpd_tls_ciphers``. ``smtpd_tls_exclude_ciphers`` always applies,
  ``smtpd_tls_mandatory_exclude_ciphers`` in addition when mandatory, and
  ``aNULL`` when client certificates are requested (anonymous ciphers cannot carry one).
* Keys: see ``mailseal.tls.chains``; every key type is loaded into the one
  context, so the client's signature algorithms choose RSA or ECDSA.
* ``tls_preempt_cipherlist`` -> OP_CIPHER_SERVER_PREFERENCE (cleared when no:
  Python sets it by default). TLS 1.3 suites stay OpenSSL's defaults.
* ``smtpd_tls_session_cache_timeout = 0`` or an empty
  ``tls_session_ticket_cipher`` -> no session tickets (OP_NO_TICKET, and no
  TLS 1.3 tickets). Otherwise tickets are on with OpenSSL's own lifetime: ``ssl``
  has no ticket-lifetime setting. The cache database is accepted and unused;
  OpenSSL's in-process session-id cache stays on (``ssl`` cannot turn it off,
  so TLS 1.2 session-id resumption within one process remains possible).
* ``tls_ssl_options``: option names Python's ``ssl`` knows (NO_TICKET,
  NO_COMPRESSION, NO_RENEGOTIATION, ...) or numbers; others are warned about.
  ``tls_disable_workarounds`` is ignored: OpenSSL 3's bug workarounds are no-ops.
* ``smtpd_tls_dh1024_param_file`` is loaded when set; without it OpenSSL offers
  no finite-field DHE (ECDHE and TLS 1.3 are unaffected). ``smtpd_tls_eecdh_grade
  = none`` excludes kECDHE; auto/strong/ultra keep OpenSSL 3's automatic groups
  (``ssl`` cannot set a group list, so ``tls_eecdh_auto_curves`` is not applied).
* Client certificates: Python's ``ssl`` has no verification callback, so a
  client certificate that does not verify *aborts the handshake* (Postfix would
  log it as Untrusted and carry on). To never lose mail from such clients,
  ``smtpd_tls_ask_ccert`` is honoured only when TLS is mandatory and a CA is
  configured (``smtpd_tls_CAfile``/``CApath``, or ``tls_append_default_CA``);
  otherwise no certificate is requested and a warning says why. At ``may`` (the
  public MX) many senders present certificates from CAs we cannot know.
  ``smtpd_tls_req_ccert`` (mandatory only, as in Postfix) -> CERT_REQUIRED:
  a client without a trusted certificate fails the handshake rather than getting
  Postfix's 421 after it. ``smtpd_tls_ccert_verifydepth`` cannot be applied.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from mailseal.tls.chains import ChainError, load_server_chains
from mailseal.tls.ciphers import cipher_string, protocol_window
from mailseal.tls.context import install_chain, set_protocols, ssl_option_bits
from mailseal.tls.levels import TlsLevel, server_level
from mailseal.tls.outcome import TlsOutcome, judge_server_side

if TYPE_CHECKING:
    from mailseal.config.model import Config
    from mailseal.tls.chains import KeyChain

__all__ = ["NO_SERVER_CERTS", "ServerTls", "build_server_tls"]

NO_SERVER_CERTS = "No server certs available. TLS won't be enabled"


@dataclass(frozen=True)
class ServerTls:
    """What the SMTP server may do with TLS, and how, for one service."""

    context: ssl.SSLContext | None
    level: TlsLevel
    problem: str | None
    ask_ccert: bool
    loglevel: int
    warnings: tuple[str, ...] = ()
    ca_configured: bool = False
    fingerprint_digest: str = "sha256"
    received_header: bool = False
    mandatory: bool = False
    protocols: tuple[str, ...] = ()

    @property
    def offered(self) -> bool:
        """STARTTLS can be announced and performed."""
        return self.context is not None

    def judge(self, ssl_object: ssl.SSLObject | ssl.SSLSocket) -> TlsOutcome:
        """The outcome of a handshake finished with this context."""
        return judge_server_side(
            ssl_object, digest=self.fingerprint_digest, ca_configured=self.ca_configured
        )


@dataclass(frozen=True)
class _ClientCerts:
    ask: bool
    require: bool
    warnings: tuple[str, ...]


def build_server_tls(config: Config, *, mandatory: bool | None = None) -> ServerTls:
    """The server TLS setup for ``config``; problems are reported in the result, never raised.

    ``mandatory`` overrides whether the mandatory protocol/cipher parameters apply
    (default: when the level requires TLS).
    """
    level = server_level(config)
    base = ServerTls(
        context=None,
        level=level,
        problem=None,
        ask_ccert=False,
        loglevel=config.smtpd_tls_loglevel,
        fingerprint_digest=config.smtpd_tls_fingerprint_digest,
        received_header=config.smtpd_tls_received_header,
        mandatory=level.requires_tls if mandatory is None else mandatory,
    )
    if level is TlsLevel.NONE:
        return base
    notes: list[str] = []
    try:
        return _build(config, base, notes)
    except (ChainError, ValueError) as error:
        problem = str(error)
    except (ssl.SSLError, OSError) as error:
        problem = f"TLS library problem: {error}"
    return replace(base, problem=problem, warnings=tuple(notes))


def _build(config: Config, base: ServerTls, notes: list[str]) -> ServerTls:
    notes.extend(_ignored_legacy_files(config))
    chains = load_server_chains(config)
    if not chains:
        raise ChainError(NO_SERVER_CERTS)
    certs = _client_cert_policy(config, mandatory=base.mandatory, level=base.level)
    notes.extend(certs.warnings)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    protocols = _apply_protocols(config, context, mandatory=base.mandatory, notes=notes)
    _apply_ciphers(config, context, mandatory=base.mandatory, ask=certs.ask or certs.require)
    _apply_options(config, context, notes)
    _install_chains(context, chains, notes)
    ca_configured = False
    if certs.ask or certs.require:
        ca_configured = _load_client_cas(config, context)
        context.verify_mode = ssl.CERT_REQUIRED if certs.require else ssl.CERT_OPTIONAL
    return replace(
        base,
        context=context,
        ask_ccert=certs.ask or certs.require,
        ca_configured=ca_configured,
        warnings=tuple(notes),
        protocols=protocols,
    )


def _ignored_legacy_files(config: Config) -> list[str]:
    if not config.smtpd_tls_chain_files:
        return []
    legacy = ("smtpd_tls_cert_file", "smtpd_tls_eccert_file", "smtpd_tls_dcert_file")
    named = [name for name in legacy if config.expanded(name)]
    if not named:
        return []
    return [f"smtpd_tls_chain_files is set: ignoring {', '.join(named)}"]


def _client_cert_policy(config: Config, *, mandatory: bool, level: TlsLevel) -> _ClientCerts:
    """Whether to request (or require) client certificates; see the module docstring."""
    notes: list[str] = []
    has_ca = bool(
        config.smtpd_tls_CAfile or config.smtpd_tls_CApath or config.tls_append_default_CA
    )
    require = config.smtpd_tls_req_ccert and mandatory
    if config.smtpd_tls_req_ccert and not mandatory:
        notes.append("Can't require client certs unless TLS is required")
    if require and not has_ca:
        notes.append(
            "smtpd_tls_req_ccert = yes without smtpd_tls_CAfile or smtpd_tls_CApath: "
            "no client certificate can be trusted, every TLS handshake will fail"
        )
    ask = config.smtpd_tls_ask_ccert and not require
    if ask and not has_ca:
        notes.append(
            "smtpd_tls_ask_ccert = yes ignored: no smtpd_tls_CAfile or smtpd_tls_CApath "
            "to verify client certificates with"
        )
        ask = False
    elif ask and not mandatory:
        notes.append(
            f'smtpd_tls_ask_ccert = yes ignored at TLS level "{level.value}": a client '
            "certificate that does not verify would abort the handshake and lose mail"
        )
        ask = False
    elif ask:
        notes.append(
            "smtpd_tls_ask_ccert = yes: a client presenting a certificate not issued by "
            "the configured CAs fails the TLS handshake"
        )
    return _ClientCerts(ask=ask, require=require, warnings=tuple(notes))


def _apply_protocols(
    config: Config, context: ssl.SSLContext, *, mandatory: bool, notes: list[str]
) -> tuple[str, ...]:
    name = "smtpd_tls_mandatory_protocols" if mandatory else "smtpd_tls_protocols"
    allowed = config.smtpd_tls_mandatory_protocols if mandatory else config.smtpd_tls_protocols
    try:
        window = protocol_window(allowed)
    except ValueError:
        text = config.expanded(name)
        raise ValueError(f'Invalid TLS protocol list "{text}": disabling TLS support') from None
    if window.dropped:
        notes.append(
            f'{name} = "{config.expanded(name)}" leaves a gap; OpenSSL needs a contiguous '
            f"range: enabling {window.lowest} to {window.highest}, "
            f"not {', '.join(window.dropped)}"
        )
    set_protocols(context, allowed)
    return window.names


def _apply_ciphers(config: Config, context: ssl.SSLContext, *, mandatory: bool, ask: bool) -> None:
    grade = config.smtpd_tls_mandatory_ciphers if mandatory else config.smtpd_tls_ciphers
    exclusions = list(config.smtpd_tls_exclude_ciphers)
    if mandatory:
        exclusions.extend(config.smtpd_tls_mandatory_exclude_ciphers)
    if ask:
        exclusions.append("aNULL")
    if config.smtpd_tls_eecdh_grade == "none":
        exclusions.append("kECDHE")
    text = cipher_string(config, "smtpd", grade, exclusions)
    try:
        context.set_ciphers(text)
    except ssl.SSLError:
        parameter = "smtpd_tls_mandatory_ciphers" if mandatory else "smtpd_tls_ciphers"
        raise ValueError(
            f'{parameter}: error setting cipher grade: "{grade}" ({text}): disabling TLS support'
        ) from None


def _apply_options(config: Config, context: ssl.SSLContext, notes: list[str]) -> None:
    if config.tls_preempt_cipherlist:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    if config.smtpd_tls_session_cache_timeout == 0 or not config.tls_session_ticket_cipher:
        context.options |= ssl.OP_NO_TICKET
        context.num_tickets = 0  # TLS 1.3 would otherwise still send (stateful) tickets
    else:
        # One TLS 1.3 ticket per handshake, as Postfix's tls_server.c asks for; OpenSSL's
        # default of two costs a second ticket's encryption and record on every session.
        context.num_tickets = 1
    bits, unknown = ssl_option_bits(config.tls_ssl_options)
    context.options |= bits
    notes.extend(f'tls_ssl_options: unknown name "{name}" ignored' for name in unknown)
    if config.smtpd_tls_dh1024_param_file:
        try:
            context.load_dh_params(config.smtpd_tls_dh1024_param_file)
        except (OSError, ssl.SSLError) as error:
            notes.append(
                f"cannot load DH parameters from file {config.smtpd_tls_dh1024_param_file}: "
                f"{error}: no finite-field DHE key exchange"
            )


def _install_chains(
    context: ssl.SSLContext, chains: tuple[KeyChain, ...], notes: list[str]
) -> None:
    seen: dict[str, str] = {}
    for chain in chains:
        if chain.algorithm in seen:
            notes.append(
                f"two {chain.algorithm} keys configured: the one from {chain.source} "
                f"replaces the one from {seen[chain.algorithm]}"
            )
        seen[chain.algorithm] = chain.source
        install_chain(context, chain)


def _load_client_cas(config: Config, context: ssl.SSLContext) -> bool:
    cafile, capath = config.smtpd_tls_CAfile or None, config.smtpd_tls_CApath or None
    if cafile or capath:
        try:
            context.load_verify_locations(cafile=cafile, capath=capath)
        except (OSError, ssl.SSLError) as error:
            where = ", ".join(
                f"{name}={value}"
                for name, value in (("CAfile", cafile), ("CApath", capath))
                if value
            )
            raise ChainError(
                f"cannot load Certification Authority data, {where}: disabling TLS support "
                f"({error})"
            ) from None
    if config.tls_append_default_CA:
        context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    return True
