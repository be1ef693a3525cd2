"""Setting up one session: connect, greeting, EHLO, STARTTLS, AUTH (smtp_proto.c smtp_helo).

Every step is bounded: ``smtp_connect_timeout``, ``smtp_helo_timeout`` (greeting,
EHLO, AUTH), ``smtp_starttls_timeout`` (the STARTTLS reply and the handshake).
Postfix's rules, with its words:

- a connection failure is logged at once (``connect to h[a]:p: ...``, 4.4.1);
- a greeting or EHLO/HELO refusal is ``host h[a] refused to talk to me: ...``;
  a 5xx greeting counts as 4xx with ``smtp_skip_5xx_greeting``;
- at ``none`` no STARTTLS (``Host offered STARTTLS: [h]`` with
  ``smtp_tls_note_starttls_offer``); at ``may`` STARTTLS when offered and
  plaintext when it is not or is refused; from ``encrypt`` up, no STARTTLS in
  the EHLO reply is ``4.7.4 TLS is required, but was not offered by host ...``
  and a refusal ``TLS is required, but host h[a] refused to start TLS: ...``;
  the message is never sent in plaintext then;
- a failed handshake is ``4.7.5 Cannot start TLS: handshake failure`` (and the
  opportunistic case is remembered, :mod:`.tls_memory`); a certificate that
  does not satisfy fingerprint/verify/secure is ``4.7.5 Server certificate not
  verified`` after the verification failure is logged; after TLS, EHLO again;
- a message that needs SMTPUTF8 needs a server that offers it (5.6.7);
- AUTH when a password applies and the server offers AUTH (:mod:`.sasl`);
  ``smtp_sasl_auth_soft_bounce`` turns a 5xx AUTH refusal into 4xx.
"""

from __future__ import annotations

import secrets

from mailseal.delivery.smtp.connection import ConnectError, open_connection
from mailseal.delivery.smtp.nexthop import Target
from mailseal.delivery.smtp.plan import Plan, SetupFailure, ended
from mailseal.delivery.smtp.results import Failure, reply_dsn, reply_text, soften
from mailseal.delivery.smtp.sasl import Credentials, choose_mechanism
from mailseal.delivery.smtp.session import SessionTimeoutError, SmtpSession, Stage
from mailseal.delivery.smtp.starttls import TlsStep, secure
from mailseal.delivery.smtp.tls_memory import TlsFailureMemory
from mailseal.log import smtp_client as words
from mailseal.smtp.client import ClientSettings, SmtpClient
from mailseal.smtp.client_events import Auth, Greeting, Helo
from mailseal.smtp.reply import Reply
from mailseal.smtp.sasl.client import ClientMechanism, client_mechanism

__all__ = ["establish", "hello"]

GREETING = "receiving the initial server greeting"
EHLO = "performing the EHLO handshake"


async def establish(
    plan: Plan,
    target: Target,
    *,
    plaintext: bool,
    credentials: Credentials | None,
    memory: TlsFailureMemory,
) -> SmtpSession | SetupFailure:
    """A session ready for MAIL FROM, or why not. ``plaintext``: never STARTTLS."""
    config = plan.config
    try:
        connection = await open_connection(target.addr, target.port, config.smtp_connect_timeout)
    except ConnectError as error:
        reason = words.connect_failed(target.host, target.addr, target.port, error.why)
        plan.info(reason)  # smtp_connect.c logs every failed address
        return SetupFailure(Failure("4.4.1", reason), connected=False)
    client = SmtpClient(ClientSettings(helo_name=config.smtp_helo_name))
    session = SmtpSession(connection, client, target)
    # The level in effect: the policy's, or none after an opportunistic TLS failure.
    session.tls_level = "none" if plaintext and plan.level.is_opportunistic else plan.level.value
    try:
        outcome = await _set_up(plan, session, plaintext, credentials, memory)
    except SessionTimeoutError as timeout:
        session.abort()
        return SetupFailure(Failure("4.4.2", words.timed_out(target.namaddr, timeout.where)))
    if isinstance(outcome, SetupFailure):
        await _goodbye(plan, session)
    return outcome


async def _goodbye(plan: Plan, session: SmtpSession) -> None:
    config = plan.config
    await session.quit(
        wait_for_reply=not config.smtp_skip_quit_response, timeout=config.smtp_quit_timeout
    )


async def _set_up(
    plan: Plan,
    session: SmtpSession,
    plaintext: bool,
    credentials: Credentials | None,
    memory: TlsFailureMemory,
) -> SmtpSession | SetupFailure:
    failure = await _greet(plan, session)
    if failure is None:
        failure = await _tls(plan, session, plaintext, memory)
    if failure is None and plan.needs_smtputf8 and not session.client.capabilities.smtputf8:
        reason = words.smtputf8_required(session.target.namaddr)
        failure = SetupFailure(Failure("5.6.7", reason), next_server=True)
    if failure is not None:
        return failure
    if credentials is not None and plan.config.smtp_sasl_auth_enable:
        return await _login(plan, session, credentials)
    return session


async def _greet(plan: Plan, session: SmtpSession) -> SetupFailure | None:
    """The server's greeting, then EHLO."""
    config = plan.config
    events = await session.exchange(lambda _: Stage(GREETING, config.smtp_helo_timeout))
    greeting = next((e for e in events if isinstance(e, Greeting)), None)
    if greeting is None:
        return SetupFailure(ended(session, events, GREETING))
    if greeting.reply.code // 100 != 2:
        failure = _refused(session, greeting.reply)
        return SetupFailure(soften(failure) if config.smtp_skip_5xx_greeting else failure)
    return await hello(plan, session)


async def _tls(
    plan: Plan, session: SmtpSession, plaintext: bool, memory: TlsFailureMemory
) -> SetupFailure | None:
    """STARTTLS per policy, and EHLO again over TLS."""
    step = await secure(plan, session, plaintext=plaintext, memory=memory)
    if isinstance(step, SetupFailure):
        return step
    if step is TlsStep.ESTABLISHED:
        return await hello(plan, session)
    return None


def _refused(session: SmtpSession, reply: Reply) -> Failure:
    text = reply_text(reply)
    reason = words.refused_to_talk(session.target.namaddr, text)
    return Failure(reply_dsn(reply), reason, session.target.host, text)


async def hello(plan: Plan, session: SmtpSession) -> SetupFailure | None:
    """EHLO (HELO with ``smtp_never_send_ehlo``, or when EHLO is refused); None when greeted."""
    config = plan.config
    where = "performing the HELO handshake" if config.smtp_never_send_ehlo else EHLO
    if not session.client.ready:  # the server hung up right after its last reply
        return SetupFailure(ended(session, [], where))
    if config.smtp_never_send_ehlo:
        session.client.helo()
    else:
        session.client.ehlo()
    events = await session.exchange(lambda _: Stage(where, config.smtp_helo_timeout))
    helo = next((e for e in events if isinstance(e, Helo)), None)
    if helo is None:
        return SetupFailure(ended(session, events, where))
    if helo.reply.code // 100 != 2:
        return SetupFailure(_refused(session, helo.reply))
    return _loop_check(plan, session, helo)


def _loop_check(plan: Plan, session: SmtpSession, helo: Helo) -> SetupFailure | None:
    """smtp_proto.c: on port 25 a server that answers EHLO with our own name is ourselves."""
    target = session.target
    words_ = helo.reply.lines[0].split()
    name = words_[0] if words_ else ""
    if target.port != 25 or name.lower() != plan.config.myhostname.lower():
        return None
    plan.warning(
        f"host {target.namaddrport} replied to HELO/EHLO with my own hostname "
        f"{plan.config.myhostname}"
    )
    dsn = "5.4.6" if target.best_mx else "4.4.6"
    return SetupFailure(Failure(dsn, words.loops_back(plan.nexthop)))


async def _login(
    plan: Plan, session: SmtpSession, credentials: Credentials
) -> SmtpSession | SetupFailure:
    """AUTH with the strongest acceptable mechanism the server offers (RFC 4954)."""
    if not session.client.capabilities.auth_mechanisms:
        return session  # Postfix sends mail without AUTH then; the server may refuse it
    mechanism = _pick(plan, session, credentials)
    if isinstance(mechanism, SetupFailure):
        return mechanism
    session.client.auth(mechanism)
    timeout = plan.config.smtp_helo_timeout
    events = await session.exchange(lambda _: Stage(EHLO, timeout))
    auth = next((e for e in events if isinstance(e, Auth)), None)
    if auth is None:
        return SetupFailure(ended(session, events, EHLO))
    if auth.is_success:
        session.authenticated = True
        return session
    return SetupFailure(_auth_failure(plan, session, auth))


def _pick(
    plan: Plan, session: SmtpSession, credentials: Credentials
) -> ClientMechanism | SetupFailure:
    """The mechanism the security options allow for this session's protection."""
    config = plan.config
    if session.verified:
        options = config.smtp_sasl_tls_verified_security_options
    elif session.client.tls_active:
        options = config.smtp_sasl_tls_security_options
    else:
        options = config.smtp_sasl_security_options
    name = choose_mechanism(
        session.client.capabilities.auth_mechanisms,
        mechanism_filter=config.smtp_sasl_mechanism_filter,
        options=options,
    )
    mechanism = None if name is None else _mechanism(name, credentials)
    if mechanism is None:
        reason = words.sasl_no_mechanisms(session.target.namaddr)
        return SetupFailure(Failure("4.7.0", reason))
    if not session.client.ready:
        return SetupFailure(ended(session, [], EHLO))
    return mechanism


def _auth_failure(plan: Plan, session: SmtpSession, auth: Auth) -> Failure:
    target = session.target
    if auth.error or auth.reply.code // 100 == 2:
        # Our side gave up, or a SCRAM server did not prove it knows the password.
        why = auth.error or "server signature missing or wrong"
        return Failure("4.7.0", words.sasl_cannot_authenticate(target.namaddr, why))
    text = reply_text(auth.reply)
    reason = words.sasl_failed(target.namaddr, text)
    failure = Failure(reply_dsn(auth.reply), reason, target.host, text)
    return soften(failure) if plan.config.smtp_sasl_auth_soft_bounce else failure


def _mechanism(name: str, credentials: Credentials) -> ClientMechanism | None:
    # A nonce without commas (RFC 5802 section 5.1); token_urlsafe has none.
    return client_mechanism(
        name, credentials.username, credentials.password, secrets.token_urlsafe(18)
    )
