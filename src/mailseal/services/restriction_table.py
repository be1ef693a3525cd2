"""Every smtpd restriction mailseal knows, as data: name -> handler (postconf(5)).

Handlers follow smtpd_check.c: each looks at its subject (client, HELO name,
sender, recipient) only when that subject is known at this stage, and
answers DUNNO otherwise. Reply texts are Postfix's.

Accepted as no-ops, with the reason:

* reject_unauth_pipelining: the SMTP core enforces pipelining rules
  (smtpd_forbid_unauth_pipelining) before any restriction runs;
* restrictions that need DNS -- reject_unknown_helo_hostname,
  reject_unknown_sender_domain, reject_unknown_recipient_domain,
  permit_mx_backup, the RBL/RHSBL/DNSWL checks and the MX/NS/A access checks
  -- answer DUNNO until mailseal has a resolver (TODO(#5));
* the sender login mismatch checks (smtpd_sender_login_maps) follow smtpd_check.c:
  an authenticated client must own the MAIL FROM address ("553 5.7.1 <a>: Sender
  address rejected: not owned by user U"), an unauthenticated one must not use an
  address that has owners ("... not logged in"). The null sender is left alone.

``check_policy_service`` is not implemented: it fails as a configuration
error (451 4.3.5) rather than being skipped, because a policy service may be
what keeps a host from being an open relay.
"""

from __future__ import annotations

from collections.abc import Callable

from mailseal.config.tables import split_extension
from mailseal.services.access import address_keys, client_keys, domain_keys
from mailseal.services.evaluation import Cursor, Engine, Handler, ListContext, Run, Status
from mailseal.services.hostnames import (
    is_valid_hostaddr,
    is_valid_hostname,
    is_valid_mailhost_literal,
)
from mailseal.services.maps import TableLookupError
from mailseal.services.matchlist import parse_address
from mailseal.services.recipients import RECIPIENT, SENDER

__all__ = ["CLIENT", "HELO", "REQUIRED_FOR_RELAY", "RESTRICTIONS"]

CLIENT = "Client host"
HELO = "Helo command"
CCERT = "Client certificate"
SASL = "SASL login name"

# At least one of these must be in smtpd_relay_restrictions or
# smtpd_recipient_restrictions, or smtpd refuses to start (fail_required).
REQUIRED_FOR_RELAY = (
    "reject_unauth_destination",
    "defer_unauth_destination",
    "reject",
    "defer",
    "defer_if_permit",
    "check_relay_domains",
)


# -- generic ---------------------------------------------------------------------------


def _permit(engine: Engine, run: Run, context: ListContext, cursor: Cursor) -> Status:
    return Status.OK


def _reject(engine: Engine, run: Run, context: ListContext, cursor: Cursor) -> Status:
    text = f"<{context.reply_name}>: {context.reply_class} rejected: Access denied"
    return engine.reject(run, engine.config.reject_code, "5.7.1", text)


def _defer(engine: Engine, run: Run, context: ListContext, cursor: Cursor) -> Status:
    text = f"<{context.reply_name}>: {context.reply_class} rejected: Try again later"
    return engine.reject(run, engine.config.defer_code, "4.3.2", text)


def _defer_if_permit(engine: Engine, run: Run, context: ListContext, cursor: Cursor) -> Status:
    text = f"<{context.reply_name}>: {context.reply_class} rejected: defer_if_permit requested"
    engine.defer_if_permit(run, 450, "4.7.0", text)
    return Status.DUNNO


def _defer_if_reject(engine: Engine, run: Run, context: ListContext, cursor: Cursor) -> Status:
    text = f"<{context.reply_name}>: {context.reply_class} rejected: defer_if_reject requested"
    engine.defer_if_reject(run, 450, "4.7.0", text)
    return Status.DUNNO


def _dunno(engine: Engine, run: Run, context: ListContext, cursor: Cursor) -> Status:
    return Status.DUNNO


def _dunno_with_argument(engine: Engine, run: Run, context: ListContext, cursor: Cursor) -> Status:
    cursor.argument()  # an RBL domain: TODO(#5)
    return Status.DUNNO


def _dunno_with_table(name: str) -> Handler:
    def handler(engine: Engine, run: Run, context: ListContext, cursor: Cursor) -> Status:
        engine.table_argument(run, name, cursor)  # MX/NS/A lookups: TODO(#5)
        return Status.DUNNO

    return handler


def _policy_service(engine: Engine, run: Run, context: ListContext, cursor: Cursor) -> Status:
    server = cursor.argument() or ""
    engine.server_error(run, f"check_policy_service {server}: policy services are not supported")


def _plaintext(engine: Engine, run: Run, context: ListContext, cursor: Cursor) -> Status:
    if run.client.tls_active:
        return Status.DUNNO
    code = engine.config.plaintext_reject_code
    return engine.reject(run, code, "4.7.1", "Session encryption is required")


# -- client ----------------------------------------------------------------------------


def _permit_mynetworks(engine: Engine, run: Run, context: ListContext, cursor: Cursor) -> Status:
    client = run.client
    return Status.OK if engine.networks.matches(client.addr, client.name) else Status.DUNNO


def _permit_inet_interfaces(
    engine: Engine, run: Run, context: ListContext, cursor: Cursor
) -> Status:
    address = parse_address(run.client.addr)
    own = address is not None and address in engine.addressing.own_addresses
    return Status.OK if own else Status.DUNNO


def _check_client_access(engine: Engine, run: Run, context: ListContext, cursor: Cursor) -> Status:
    table = engine.table_argument(run, "check_client_access", cursor)
    client = run.client
    keys = client_keys(client.name, client.addr, parent_style=_parent_style(engine))
    return engine.access(run, table, keys, (client.namaddr, CLIENT), context)


def _unknown_client(what: str) -> Handler:
    def handler(engine: Engine, run: Run, context: ListContext, cursor: Cursor) -> Status:
        if run.client.name.lower() != "unknown":
            return Status.DUNNO
        # Without a resolver a missing name is taken as permanent (TODO(#5)).
        text = f"Client host rejected: cannot find your {what}, [{run.client.addr}]"
        return engine.reject(run, engine.config.unknown_client_reject_code, "4.7.1", text)

    return handler


def _check_ccert_access(engine: Engine, run: Run, context: ListContext, cursor: Cursor) -> Status:
    table = engine.table_argument(run, "check_ccert_access", cursor)
    fingerprint = run.client.tls_fingerprint
    if not (run.client.certificate_trusted and fingerprint):
        return Status.DUNNO
    return engine.access(run, table, [(fingerprint, True)], (fingerprint, CCERT), context)


def _check_sasl_access(engine: Engine, run: Run, context: ListContext, cursor: Cursor) -> Status:
    table = engine.table_argument(run, "check_sasl_access", cursor)
    username = run.client.sasl_username
    if not username:
        return Status.DUNNO
    return engine.access(run, table, [(username, True)], (username, SASL), context)


def _permit_sasl(engine: Engine, run: Run, context: ListContext, cursor: Cursor) -> Status:
    return Status.OK if run.client.sasl_username else Status.DUNNO


def _permit_tls_all(engine: Engine, run: Run, context: ListContext, cursor: Cursor) -> Status:
    return Status.OK if run.client.certificate_trusted else Status.DUNNO


def _permit_tls_clientcerts(
    engine: Engine, run: Run, context: ListContext, cursor: Cursor
) -> Status:
    fingerprint = run.client.tls_fingerprint
    if not (run.client.certificate_trusted and fingerprint):
        return Status.DUNNO
    try:
        found = engine.relay_clientcerts.find_fixed(fingerprint.lower())
    except TableLookupError:
        engine.retry(run, context.reply_name)
    return Status.OK if found is not None else Status.DUNNO


# -- HELO ------------------------------------------------------------------------------


def _check_helo_access(engine: Engine, run: Run, context: ListContext, cursor: Cursor) -> Status:
    table = engine.table_argument(run, "check_helo_access", cursor)
    helo = run.client.helo
    if not helo:
        return Status.DUNNO
    keys = domain_keys(helo, parent_style=_parent_style(engine))
    return engine.access(run, table, keys, (helo, HELO), context)


def _invalid_literal(engine: Engine, run: Run, helo: str) -> Status:
    if is_valid_mailhost_literal(helo):
        return Status.DUNNO
    text = f"<{helo}>: {HELO} rejected: invalid ip address"
    return engine.reject(run, engine.config.invalid_hostname_reject_code, "5.5.2", text)


def _invalid_helo(engine: Engine, run: Run, context: ListContext, cursor: Cursor) -> Status:
    return _judge_helo(
        engine,
        run,
        lambda name: is_valid_hostname(name) or is_valid_hostaddr(name),
        engine.config.invalid_hostname_reject_code,
        "Invalid name",
    )


def _non_fqdn_helo(engine: Engine, run: Run, context: ListContext, cursor: Cursor) -> Status:
    return _judge_helo(
        engine,
        run,
        lambda name: is_valid_hostname(name) and "." in name,
        engine.config.non_fqdn_reject_code,
        "need fully-qualified hostname",
    )


def _judge_helo(
    engine: Engine, run: Run, acceptable: Callable[[str], bool], code: int, why: str
) -> Status:
    """The shared shape of the HELO name checks: literals first, then ``acceptable``."""
    helo = run.client.helo
    if not helo:
        return Status.DUNNO
    if helo.startswith("["):
        return _invalid_literal(engine, run, helo)
    if acceptable(_without_dot(helo)):
        return Status.DUNNO
    return engine.reject(run, code, "5.5.2", f"<{helo}>: {HELO} rejected: {why}")


# -- sender and recipient --------------------------------------------------------------


def _sender_owners(engine: Engine, run: Run, sender: str) -> list[str] | None:
    """The login names smtpd_sender_login_maps gives for ``sender`` (None: no entry)."""
    try:
        found = engine.sender_logins.find_address(
            engine.addressing.canonical(sender),
            delimiter=engine.config.recipient_delimiter,
            is_local_domain=engine.addressing.is_local_domain,
        )
    except TableLookupError:
        engine.retry(run, sender)
    if found is None:
        return None
    return [name for name in found.value.replace(",", " ").split() if name]


def _login_mismatch(*, authenticated: bool, unauthenticated: bool, known_only: bool) -> Handler:
    def handler(engine: Engine, run: Run, context: ListContext, cursor: Cursor) -> Status:
        sender = run.sender
        if not sender or not engine.sender_logins:
            return Status.DUNNO
        user = run.client.sasl_username
        if user is not None and authenticated:
            owners = _sender_owners(engine, run, sender)
            if owners is None and known_only:
                return Status.DUNNO
            if not any(user.lower() == owner.lower() for owner in owners or ()):
                text = f"<{sender}>: Sender address rejected: not owned by user {user}"
                return engine.reject(run, 553, "5.7.1", text)
        elif user is None and unauthenticated and _sender_owners(engine, run, sender) is not None:
            return engine.reject(
                run, 553, "5.7.1", f"<{sender}>: Sender address rejected: not logged in"
            )
        return Status.DUNNO

    return handler


def _mail_access(engine: Engine, address: str) -> list[tuple[str, bool]]:
    if not address:
        return [(engine.config.smtpd_null_access_lookup_key, True)]
    canonical = engine.addressing.canonical(address).lower()
    at = canonical.rfind("@")
    localpart, domain = canonical[:at], canonical[at + 1 :]
    base, extension = split_extension(
        localpart,
        engine.config.recipient_delimiter,
        owner_request_special=engine.config.owner_request_special,
    )
    stripped = f"{base}@{domain}" if extension else None
    return address_keys(canonical, stripped, parent_style=_parent_style(engine))


def _check_sender_access(engine: Engine, run: Run, context: ListContext, cursor: Cursor) -> Status:
    table = engine.table_argument(run, "check_sender_access", cursor)
    if run.sender is None:
        return Status.DUNNO
    keys = _mail_access(engine, run.sender)
    return engine.access(run, table, keys, (run.sender, SENDER), context)


def _check_recipient_access(
    engine: Engine, run: Run, context: ListContext, cursor: Cursor
) -> Status:
    table = engine.table_argument(run, "check_recipient_access", cursor)
    if run.recipient is None:
        return Status.DUNNO
    keys = _mail_access(engine, run.recipient)
    return engine.access(run, table, keys, (run.recipient, RECIPIENT), context)


def _non_fqdn(engine: Engine, run: Run, address: str, reply_class: str) -> Status:
    domain = address[address.rfind("@") + 1 :] if "@" in address else ""
    if domain.startswith("[") and domain.endswith("]"):
        return Status.DUNNO
    domain = _without_dot(domain)
    if domain and is_valid_hostname(domain) and "." in domain:
        return Status.DUNNO
    text = f"<{address}>: {reply_class} rejected: need fully-qualified address"
    return engine.reject(run, engine.config.non_fqdn_reject_code, "4.5.2", text)


def _non_fqdn_sender(engine: Engine, run: Run, context: ListContext, cursor: Cursor) -> Status:
    return _non_fqdn(engine, run, run.sender, SENDER) if run.sender else Status.DUNNO


def _non_fqdn_recipient(engine: Engine, run: Run, context: ListContext, cursor: Cursor) -> Status:
    return _non_fqdn(engine, run, run.recipient, RECIPIENT) if run.recipient else Status.DUNNO


def _unlisted_sender(engine: Engine, run: Run, context: ListContext, cursor: Cursor) -> Status:
    return check_sender_maps(engine, run) if run.sender else Status.DUNNO


def _unlisted_recipient(engine: Engine, run: Run, context: ListContext, cursor: Cursor) -> Status:
    return check_recipient_maps(engine, run) if run.recipient else Status.DUNNO


def check_sender_maps(engine: Engine, run: Run) -> Status:
    """reject_unlisted_sender, once per command (check_sender_rcpt_maps)."""
    if run.sender_checked or not run.sender:
        return Status.DUNNO
    run.sender_checked = not run.warn_if_reject
    verdict = engine.recipients.validate(run.sender, SENDER)
    if verdict is None:
        return Status.DUNNO
    return engine.reject(run, verdict.code, verdict.enhanced, verdict.text)


def check_recipient_maps(engine: Engine, run: Run) -> Status:
    """reject_unlisted_recipient, once per command (check_recipient_rcpt_maps)."""
    if run.recipient_checked or not run.recipient:
        return Status.DUNNO
    run.recipient_checked = not run.warn_if_reject
    verdict = engine.recipients.validate(run.recipient, RECIPIENT)
    if verdict is None:
        return Status.DUNNO
    return engine.reject(run, verdict.code, verdict.enhanced, verdict.text)


def _authorized(engine: Engine, run: Run, recipient: str) -> bool:
    try:
        return engine.addressing.is_local_or_virtual_or_relay(recipient)
    except TableLookupError:
        engine.retry(run, recipient)


def _permit_auth_destination(
    engine: Engine, run: Run, context: ListContext, cursor: Cursor
) -> Status:
    if run.recipient and _authorized(engine, run, run.recipient):
        return Status.OK
    return Status.DUNNO


def _unauth_destination(defer: bool) -> Handler:
    def handler(engine: Engine, run: Run, context: ListContext, cursor: Cursor) -> Status:
        recipient = run.recipient
        if not recipient or _authorized(engine, run, recipient):
            return Status.DUNNO
        code = engine.config.relay_domains_reject_code - (100 if defer else 0)
        dsn = "4.7.1" if defer else "5.7.1"
        return engine.reject(run, code, dsn, f"<{recipient}>: Relay access denied")

    return handler


def _parent_style(engine: Engine) -> bool:
    return "smtpd_access_maps" in engine.config.parent_domain_matches_subdomains


def _without_dot(name: str) -> str:
    return name[:-1] if name.endswith(".") and not name.endswith("..") else name


_DNS_TABLE_CHECKS = [
    f"check_{subject}_{kind}_access"
    for subject in ("client", "reverse_client", "helo", "sender", "recipient")
    for kind in ("mx", "ns", "a")
]

RESTRICTIONS: dict[str, Handler] = {
    "permit": _permit,
    "reject": _reject,
    "defer": _defer,
    "defer_if_permit": _defer_if_permit,
    "defer_if_reject": _defer_if_reject,
    "reject_unauth_pipelining": _dunno,
    "reject_plaintext_session": _plaintext,
    "check_policy_service": _policy_service,
    "permit_mynetworks": _permit_mynetworks,
    "permit_inet_interfaces": _permit_inet_interfaces,
    "check_client_access": _check_client_access,
    "reject_unknown_client_hostname": _unknown_client("hostname"),
    "reject_unknown_client": _unknown_client("hostname"),
    "reject_unknown_reverse_client_hostname": _unknown_client("reverse hostname"),
    "check_ccert_access": _check_ccert_access,
    "check_sasl_access": _check_sasl_access,
    "permit_sasl_authenticated": _permit_sasl,
    "permit_tls_all_clientcerts": _permit_tls_all,
    "permit_tls_clientcerts": _permit_tls_clientcerts,
    "check_helo_access": _check_helo_access,
    "reject_invalid_helo_hostname": _invalid_helo,
    "reject_invalid_hostname": _invalid_helo,
    "reject_non_fqdn_helo_hostname": _non_fqdn_helo,
    "reject_non_fqdn_hostname": _non_fqdn_helo,
    "check_sender_access": _check_sender_access,
    "reject_non_fqdn_sender": _non_fqdn_sender,
    "reject_unlisted_sender": _unlisted_sender,
    "check_recipient_access": _check_recipient_access,
    "permit_auth_destination": _permit_auth_destination,
    "reject_unauth_destination": _unauth_destination(defer=False),
    "defer_unauth_destination": _unauth_destination(defer=True),
    "reject_non_fqdn_recipient": _non_fqdn_recipient,
    "reject_unlisted_recipient": _unlisted_recipient,
    "check_recipient_maps": _unlisted_recipient,
    # Need DNS: TODO(#5).
    "reject_unknown_helo_hostname": _dunno,
    "reject_unknown_hostname": _dunno,
    "reject_unknown_sender_domain": _dunno,
    "reject_unknown_recipient_domain": _dunno,
    "permit_mx_backup": _dunno,
    "reject_rbl_client": _dunno_with_argument,
    "reject_rhsbl_client": _dunno_with_argument,
    "reject_rhsbl_reverse_client": _dunno_with_argument,
    "reject_rhsbl_helo": _dunno_with_argument,
    "reject_rhsbl_sender": _dunno_with_argument,
    "reject_rhsbl_recipient": _dunno_with_argument,
    "permit_dnswl_client": _dunno_with_argument,
    "permit_rhswl_client": _dunno_with_argument,
    "reject_sender_login_mismatch": _login_mismatch(
        authenticated=True, unauthenticated=True, known_only=False
    ),
    "reject_authenticated_sender_login_mismatch": _login_mismatch(
        authenticated=True, unauthenticated=False, known_only=False
    ),
    "reject_known_sender_login_mismatch": _login_mismatch(
        authenticated=True, unauthenticated=True, known_only=True
    ),
    "reject_unauthenticated_sender_login_mismatch": _login_mismatch(
        authenticated=False, unauthenticated=True, known_only=False
    ),
} | {name: _dunno_with_table(name) for name in _DNS_TABLE_CHECKS}
