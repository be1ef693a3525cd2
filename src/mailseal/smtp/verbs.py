"""The handlers of the SMTP verbs: one function per verb, ``(session, argument) -> None``.

Each handler checks the command the way Postfix's smtpd.c does, in the same order,
and either replies at once, raises ``RemoteProtocolError`` carrying the reply (the
dispatcher sends it), or asks the driver with a request and finishes in the
continuation. RFC 5321 section 4.1.1 (verbs), 4.1.4 (order), RFC 3030 (BDAT),
RFC 3207 (STARTTLS), RFC 1870 (SIZE), RFC 6531 (SMTPUTF8).
"""

from __future__ import annotations

import base64
import binascii
import re
from types import MappingProxyType

from mailseal.smtp import reply as replies
from mailseal.smtp.addresses import Path, parse_mail_params, parse_path, parse_rcpt_params
from mailseal.smtp.content import ChunkAssembler, ChunkReader, ContentSink, DataReader
from mailseal.smtp.events import (
    AuthAborted,
    AuthRequest,
    DataRequest,
    Envelope,
    EnvelopeRecipient,
    Hello,
    MailRequest,
    MessageComplete,
    ProtocolViolation,
    RcptRequest,
    Reset,
    VrfyRequest,
)
from mailseal.smtp.reply import RemoteProtocolError, Reply
from mailseal.smtp.session import BdatState, Phase, Session, Transaction
from mailseal.smtp.settings import ehlo_keywords

__all__ = [
    "auth",
    "auth_answered",
    "bdat",
    "data",
    "decode_response",
    "ehlo",
    "end_of_message",
    "helo",
    "mail",
    "noop",
    "quit",
    "rcpt",
    "refuse_bdat",
    "rset",
    "starttls",
    "vrfy",
]

# RFC 3030 section 2: "BDAT" SP chunk-size [ SP end-marker ]; 18 digits keep it sane.
_BDAT_ARGS = re.compile(r"([0-9]{1,18})(?:[ \t]+(LAST))?", re.IGNORECASE)


def ehlo(s: Session, arg: str) -> None:
    _hello(s, arg, extended=True)


def helo(s: Session, arg: str) -> None:
    _hello(s, arg, extended=False)


def _hello(s: Session, arg: str, *, extended: bool) -> None:
    name = arg.strip()
    if not name:
        raise RemoteProtocolError(replies.EHLO_SYNTAX if extended else replies.HELO_SYNTAX)
    # RFC 5321 section 4.1.4: EHLO/HELO in a transaction acts as RSET first.
    if s.in_transaction:
        s.notice(Reset())
    s.reset_transaction()
    s.helo_name = name
    s.extended = extended
    lines = [s.settings.hostname]
    if extended:
        lines += ehlo_keywords(s.settings, tls_active=s.tls_active)
    s.complete(Reply(250, "", tuple(lines)))
    s.notice(Hello(name, extended))


def _path(arg: str, keyword: str, syntax: Reply, bad: Reply) -> Path:
    try:
        path = parse_path(arg, keyword)
    except ValueError:
        raise RemoteProtocolError(bad) from None
    if path is None:
        raise RemoteProtocolError(syntax)
    return path


def mail(s: Session, arg: str) -> None:
    st = s.settings
    if st.helo_required and s.helo_name is None:
        raise RemoteProtocolError(replies.NEED_HELO)
    if s.bdat is not BdatState.NONE:
        raise RemoteProtocolError(replies.MAIL_AFTER_BDAT)
    if s.transaction is not None:
        raise RemoteProtocolError(replies.NESTED_MAIL)
    path = _path(arg, "FROM", replies.MAIL_SYNTAX, replies.BAD_SENDER_ADDRESS)
    params = parse_mail_params(
        path.words, dsn=st.enabled("DSN"), smtputf8=st.enabled("SMTPUTF8"), auth=st.enabled("AUTH")
    )
    if not path.is_ascii and "SMTPUTF8" not in params:
        raise RemoteProtocolError(_no_smtputf8(s, replies.BAD_SENDER_ADDRESS))
    if st.message_size_limit and int(params.get("SIZE", "0")) > st.message_size_limit:
        raise RemoteProtocolError(replies.SIZE_EXCEEDED)

    def answered(answer: Reply | None) -> None:
        if answer is None or answer.is_positive:
            s.transaction = Transaction(path.address, params)
        s.complete(answer or replies.OK_MAIL)

    s.request(MailRequest(path.address, MappingProxyType(dict(params))), answered)


def _no_smtputf8(s: Session, bad: Reply) -> Reply:
    # RFC 6531 section 3.4: a UTF-8 address needs MAIL FROM ... SMTPUTF8.
    return replies.SMTPUTF8_REQUIRED if s.settings.enabled("SMTPUTF8") else bad


def rcpt(s: Session, arg: str) -> None:
    st = s.settings
    tx = s.transaction
    if tx is None:
        raise RemoteProtocolError(replies.NEED_MAIL)
    if s.bdat is not BdatState.NONE:
        raise RemoteProtocolError(replies.RCPT_AFTER_BDAT)
    path = _path(arg, "TO", replies.RCPT_SYNTAX, replies.BAD_RCPT_ADDRESS)
    if not path.address:
        raise RemoteProtocolError(replies.BAD_RCPT_ADDRESS)
    params = MappingProxyType(parse_rcpt_params(path.words, dsn=st.enabled("DSN")))
    if not path.is_ascii and not tx.smtputf8:
        raise RemoteProtocolError(_no_smtputf8(s, replies.BAD_RCPT_ADDRESS))
    if st.recipient_limit and len(tx.recipients) >= st.recipient_limit:
        raise RemoteProtocolError(replies.TOO_MANY_RECIPIENTS)

    def answered(answer: Reply | None) -> None:
        if answer is None or answer.is_positive:
            tx.recipients.append(EnvelopeRecipient(path.address, params))
        s.complete(answer or replies.OK_RCPT)

    s.request(RcptRequest(path.address, params), answered)


def data(s: Session, arg: str) -> None:
    if s.bdat is not BdatState.NONE:
        raise RemoteProtocolError(replies.DATA_AFTER_BDAT)
    if s.transaction is None:
        raise RemoteProtocolError(replies.NEED_RCPT)
    if not s.transaction.recipients:
        raise RemoteProtocolError(replies.NO_VALID_RECIPIENTS)
    if arg.strip():
        raise RemoteProtocolError(replies.DATA_SYNTAX)
    after_crlf = s.line_crlf

    def answered(answer: Reply | None) -> None:
        if answer is not None and not answer.is_positive:
            s.complete(answer)
            return
        s.send(answer or replies.START_MAIL_INPUT)
        sink = s.new_sink()
        reject = s.settings.rejects_bare_newline
        reader = DataReader(sink, reject_bare_lf=reject, after_crlf=after_crlf)
        s.read_content(reader, lambda: end_of_message(s, sink, chunking=False))

    s.request(DataRequest(chunking=False), answered)


def end_of_message(s: Session, sink: ContentSink, *, chunking: bool) -> None:
    """The final dot (or BDAT LAST) was read: refuse the content or hand it over."""
    s.last_command = "END-OF-MESSAGE"
    name = "bdat" if chunking else "data"
    tx = s.transaction
    if sink.has_nul or sink.too_big or tx is None:
        if sink.has_nul:
            s.notice(ProtocolViolation("NUL character in message content", ""))
        _finish(s, replies.NUL_IN_CONTENT if sink.has_nul else replies.MESSAGE_TOO_BIG, name)
        return
    envelope = Envelope(
        sender=tx.sender,
        sender_params=MappingProxyType(dict(tx.params)),
        recipients=tuple(tx.recipients),
        helo=s.helo_name or "",
        extended=s.extended,
        chunking=chunking,
        size=sink.size,
    )

    def answered(answer: Reply | None) -> None:
        assert answer is not None  # answer() refuses None for MessageComplete
        if chunking:
            answer = _bdat_queued(answer, sink.size)
        _finish(s, answer, name)

    s.request(MessageComplete(envelope, sink.content, sink.spill), answered)


def _bdat_queued(answer: Reply, size: int) -> Reply:
    # Postfix acknowledges BDAT LAST as "Ok: N bytes queued as ID"; the driver answers
    # the same queued(ID) for DATA and BDAT, so the core adds the size here.
    prefix = "Ok: queued as "
    line = answer.lines[0]
    if answer.code == 250 and len(answer.lines) == 1 and line.startswith(prefix):
        return replies.queued_bytes(size, line[len(prefix) :])
    return answer


def _finish(s: Session, answer: Reply, name: str) -> None:
    s.complete(answer, name)
    if answer.is_positive:
        # Postfix forgives earlier errors once a message got through.
        s.error_count = 0
        s.junk_count = 0
    s.reset_transaction()


def _bdat_args(arg: str) -> tuple[int, bool] | None:
    match = _BDAT_ARGS.fullmatch(arg.strip())
    if match is None:
        return None
    return int(match.group(1)), match.group(2) is not None


def refuse_bdat(s: Session, arg: str, answer: Reply) -> None:
    """Refuse a BDAT before its handler runs (e.g. 530): skip its chunk so we stay in step."""
    args = _bdat_args(arg)
    if args is None:
        s.close("malformed BDAT command", replies.BDAT_SYNTAX)
        return
    s.read_content(ChunkReader(args[0], None), lambda: s.complete(answer))


def bdat(s: Session, arg: str) -> None:
    # Without a size we cannot skip the chunk, so both errors hang up (521, as Postfix).
    if not s.settings.enabled("CHUNKING"):
        s.close("BDAT not implemented", replies.BDAT_NOT_IMPLEMENTED)
        return
    args = _bdat_args(arg)
    if args is None:
        s.close("malformed BDAT command", replies.BDAT_SYNTAX)
        return
    size, last = args
    refusal = _bdat_refusal(s, size, last)
    if refusal is not None:
        _skip_chunk(s, size, last, refusal)
    elif s.bdat is BdatState.NONE:
        s.request(DataRequest(chunking=True), lambda a: _first_chunk(s, size, last, a))
    else:
        _read_chunk(s, size, last)


def _bdat_refusal(s: Session, size: int, last: bool) -> Reply | None:
    """Why this chunk is refused, in Postfix's order; ``None`` when it is taken."""
    if s.bdat is BdatState.ERROR:
        return replies.discarded_after_error(size)
    if size == 0 and not last:
        return replies.NULL_BDAT
    if s.transaction is None:
        return replies.NEED_MAIL
    if not s.transaction.recipients:
        return replies.NO_VALID_RECIPIENTS
    limit = s.settings.message_size_limit
    so_far = s.assembler.sink.size if s.assembler is not None else 0
    if limit and so_far + size > limit:
        return replies.CHUNK_TOO_BIG
    return None


def _skip_chunk(s: Session, size: int, last: bool, answer: Reply) -> None:
    """Read and drop a refused chunk, then reply; the sequence fails up to BDAT LAST."""

    def done() -> None:
        s.complete(answer)
        if not last:
            s.bdat = BdatState.ERROR
            s.assembler = None
        elif s.bdat is not BdatState.NONE:
            s.reset_transaction()

    s.read_content(ChunkReader(size, None), done)


def _first_chunk(s: Session, size: int, last: bool, answer: Reply | None) -> None:
    if answer is not None and not answer.is_positive:
        _skip_chunk(s, size, last, answer)
        return
    sink = s.new_sink()
    s.assembler = ChunkAssembler(sink, reject_bare_lf=s.settings.rejects_bare_newline)
    s.bdat = BdatState.ACTIVE
    _read_chunk(s, size, last)


def _read_chunk(s: Session, size: int, last: bool) -> None:
    assembler = s.assembler
    assert assembler is not None  # set by _first_chunk; sequence state ACTIVE

    def done() -> None:
        if last:
            assembler.finish()
        sink = assembler.sink
        if sink.has_nul and not last:
            _chunk_failed(s, replies.NUL_IN_CONTENT)
        elif last:
            end_of_message(s, sink, chunking=True)
        else:
            s.complete(replies.chunk_ok(size))

    s.read_content(ChunkReader(size, assembler), done)


def _chunk_failed(s: Session, answer: Reply) -> None:
    s.notice(ProtocolViolation("NUL character in message content", ""))
    s.complete(answer)
    s.bdat = BdatState.ERROR
    s.assembler = None


def rset(s: Session, arg: str) -> None:
    if arg.strip():
        raise RemoteProtocolError(replies.RSET_SYNTAX)
    s.reset_transaction()
    s.notice(Reset())
    s.complete(replies.OK)


def noop(s: Session, arg: str) -> None:
    # RFC 5321 section 4.1.1.9: an argument is allowed and ignored.
    s.complete(replies.OK)


def quit(s: Session, arg: str) -> None:
    # Postfix does not check QUIT's syntax either.
    s.complete(replies.BYE)
    s.close("quit")


def vrfy(s: Session, arg: str) -> None:
    if not s.settings.enabled("VRFY"):
        raise RemoteProtocolError(replies.VRFY_DISABLED)
    argument = arg.strip()
    if not argument:
        raise RemoteProtocolError(replies.vrfy_syntax(s.settings.enabled("SMTPUTF8")))
    s.request(VrfyRequest(argument), lambda a: s.complete(a or replies.vrfy_unverified(argument)))


def starttls(s: Session, arg: str) -> None:
    if arg.strip():
        raise RemoteProtocolError(replies.STARTTLS_SYNTAX)
    if s.in_transaction:
        raise RemoteProtocolError(replies.TRANSACTION_IN_PROGRESS)
    if s.tls_active:
        raise RemoteProtocolError(replies.TLS_ALREADY_ACTIVE)
    if s.settings.tls_local_problem:
        raise RemoteProtocolError(replies.TLS_UNAVAILABLE)
    if not s.settings.enabled("STARTTLS"):
        raise RemoteProtocolError(replies.NOT_IMPLEMENTED)
    s.complete(replies.READY_TO_START_TLS)
    s.start_tls()


def auth(s: Session, arg: str) -> None:
    """AUTH, checked in the order of Postfix's smtpd_sasl_auth_cmd (RFC 4954 section 4)."""
    st = s.settings
    if st.helo_required and s.helo_name is None:
        raise RemoteProtocolError(replies.NEED_HELO)
    if not st.enabled("AUTH"):
        raise RemoteProtocolError(replies.AUTH_NOT_ENABLED)
    if not st.auth_offered(tls_active=s.tls_active):
        raise RemoteProtocolError(replies.AUTH_NEEDS_ENCRYPTION)
    if s.authenticated is not None:
        raise RemoteProtocolError(replies.ALREADY_AUTHENTICATED)
    if s.in_transaction:
        # RFC 4954 section 4: "not permitted during a mail transaction".
        raise RemoteProtocolError(replies.TRANSACTION_IN_PROGRESS)
    words = arg.split()
    if not 1 <= len(words) <= 2:
        raise RemoteProtocolError(replies.AUTH_SYNTAX)
    mechanism = words[0].upper()
    s.auth_mechanism = mechanism
    if mechanism not in st.auth_mechanisms:
        s.notice(AuthAborted(mechanism, replies.INVALID_MECHANISM))
        raise RemoteProtocolError(replies.auth_failed(replies.INVALID_MECHANISM))
    initial: bytes | None = None
    if len(words) == 2:
        initial = decode_response(words[1], initial=True)
        if initial is None:
            s.notice(AuthAborted(mechanism, "Invalid base64 data in initial response"))
            raise RemoteProtocolError(replies.bad_base64("initial"))
    s.request(AuthRequest(mechanism, initial), lambda answer: auth_answered(s, answer))


def decode_response(text: str, *, initial: bool) -> bytes | None:
    """A base64 SASL response; "=" is the empty initial response. ``None`` if malformed."""
    if initial and text == "=":
        return b""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        return None


def auth_answered(s: Session, answer: Reply | None) -> None:
    """The driver ended an AUTH exchange with a failure reply (535, 454, 450...)."""
    if answer is None or answer.is_positive:
        raise AssertionError("success and challenges go through auth_success/auth_challenge")
    s.phase = Phase.COMMAND
    s.complete(answer, "auth")
