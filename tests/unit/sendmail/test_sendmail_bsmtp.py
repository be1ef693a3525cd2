"""sendmail -bs: the server core driven over blocking stdin/stdout, messages handed to submit."""

from collections.abc import Callable

from mailseal.services.pickup_bsmtp import StdioMessage, serve_stdio
from mailseal.smtp.server import ServerSettings

SETTINGS = ServerSettings(
    hostname="mail.example.test",
    banner="mail.example.test ESMTP mailseal",
    forbid_unauth_pipelining=False,  # as stdio_settings: a local user may pipeline
)


def session(chunks: list[bytes], submit: Callable[[StdioMessage], str]) -> str:
    pending = list(chunks)
    out: list[bytes] = []
    serve_stdio(SETTINGS, lambda: pending.pop(0) if pending else b"", out.append, submit)
    return b"".join(out).decode()


def test_a_pipelined_session_submits_the_message() -> None:
    got: list[StdioMessage] = []

    def submit(message: StdioMessage) -> str:
        got.append(message)
        return "0123456789AB"

    text = session(
        [
            b"EHLO me\r\nMAIL FROM:<joe@x.test> ENVID=e1 BODY=8BITMIME\r\n",
            b"RCPT TO:<a@x.test> NOTIFY=NEVER\r\nRCPT TO:<b@x.test>\r\nDATA\r\n",
            b"Subject: s\r\n\r\n..dot\r\n.\r\nQUIT\r\n",
        ],
        submit,
    )
    assert text.startswith("220 mail.example.test ESMTP mailseal\r\n")
    assert "250 2.0.0 Ok: queued as 0123456789AB\r\n" in text
    assert text.endswith("221 2.0.0 Bye\r\n")
    [message] = got
    assert message.sender == "joe@x.test"
    assert message.recipients == ("a@x.test", "b@x.test")
    assert message.notify == ("NEVER", "")
    assert (message.envid, message.body) == ("e1", "8BITMIME")
    assert message.content == b"Subject: s\r\n\r\n.dot\r\n"


def test_a_failed_submit_is_a_temporary_error_and_the_session_goes_on() -> None:
    def submit(message: StdioMessage) -> str:
        raise OSError("disk full")

    text = session(
        [b"HELO me\r\nMAIL FROM:<>\r\nRCPT TO:<a@x>\r\nDATA\r\nx\r\n.\r\nNOOP\r\n"], submit
    )
    assert "451 4.3.0 Error: queue file write error\r\n" in text
    assert text.endswith("250 2.0.0 Ok\r\n")  # NOOP answered; EOF ends the session


def test_end_of_input_ends_the_session() -> None:
    text = session([b"EHLO me\r\n"], lambda message: "X")
    assert text.splitlines()[0].startswith("220 ")
    assert "250-mail.example.test" in text
