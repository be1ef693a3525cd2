"""Dovecot's auth client protocol: the pure lines, and DovecotBackend against scripted servers.

The scripted servers are real unix sockets (asyncio.start_unix_server) that say what a
broken or slow Dovecot would say; the real Dovecot is in tests/interop.
"""

import asyncio
import base64
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailseal.services.sasl.backend import Accepted, Continue, Rejected, SaslBackend, SaslPeer
from mailseal.services.sasl.dovecot import CANT_CONNECT, CONNECTION_LOST, DovecotBackend
from mailseal.services.sasl.dovecot_protocol import (
    BACKEND_ERROR,
    AuthRequest,
    HandshakeError,
    HandshakeParser,
    Mechanism,
    Reply,
    ServerHello,
    cancel_line,
    cont_line,
    filter_mechanisms,
    handshake_lines,
    parse_reply,
    parse_security_options,
    printable,
    tab_escape,
    tab_unescape,
)

PEER = SaslPeer("smtp", "192.0.2.1", 587, "198.51.100.7", 40001, tls=False)

# What Dovecot 2.3.19 sends, as captured from the Debian package.
DOVECOT_HELLO = (
    "VERSION\t1\t2\n"
    "MECH\tPLAIN\tplaintext\n"
    "MECH\tLOGIN\tplaintext\n"
    "MECH\tSCRAM-SHA-256\tmutual-auth\n"
    "SPID\t14157\n"
    "CUID\t1\n"
    "COOKIE\t86f3506c7d9ab16b59a19d84f7b2b2b8\n"
    "DONE\n"
)


# -- escaping -------------------------------------------------------------------------


def test_tab_escape_matches_dovecots_str_tabescape() -> None:
    assert tab_escape("a\tb\nc\rd\001e") == "a\001tb\001nc\001rd\0011e"
    assert tab_escape("plain") == "plain"
    assert tab_unescape("us\001ter") == "us\ter"
    assert tab_unescape("x\001") == "x"  # a dangling escape loses nothing else


@given(st.text())
def test_tab_escape_round_trips_and_hides_separators(value: str) -> None:
    escaped = tab_escape(value)
    assert not {"\t", "\n", "\r"} & set(escaped)
    assert tab_unescape(escaped) == value


def test_printable_replaces_control_characters() -> None:
    assert printable("us\ter\x00ü") == "us?er?ü"


# -- security options and mechanisms --------------------------------------------------


def test_security_options_parse_like_postfix() -> None:
    assert parse_security_options("noanonymous") == {"noanonymous"}
    assert parse_security_options(" NoPlaintext,noanonymous  mutual_auth") == {
        "noplaintext",
        "noanonymous",
        "mutual_auth",
    }
    assert parse_security_options("") == frozenset()
    with pytest.raises(ValueError, match="unknown SASL security option: noway"):
        parse_security_options("noanonymous, noway")


MECHS = (
    Mechanism("PLAIN", frozenset({"plaintext"})),
    Mechanism("ANONYMOUS", frozenset({"anonymous"})),
    Mechanism("SCRAM-SHA-256", frozenset({"mutual-auth"})),
    Mechanism("CRAM-MD5", frozenset({"dictionary", "active"})),
    Mechanism("EXTERNAL", frozenset({"private"})),
)


@pytest.mark.parametrize(
    ("options", "offered"),
    [
        ("", ("PLAIN", "ANONYMOUS", "SCRAM-SHA-256", "CRAM-MD5")),
        ("noanonymous", ("PLAIN", "SCRAM-SHA-256", "CRAM-MD5")),
        ("noanonymous, noplaintext", ("SCRAM-SHA-256", "CRAM-MD5")),
        ("nodictionary", ("PLAIN", "ANONYMOUS", "SCRAM-SHA-256")),
        ("noactive", ("PLAIN", "ANONYMOUS", "SCRAM-SHA-256")),
        ("mutual_auth", ("SCRAM-SHA-256",)),
        ("forward_secrecy", ()),
    ],
)
def test_mechanisms_filtered_as_postfix_does(options: str, offered: tuple[str, ...]) -> None:
    # The private mechanism is never offered, whatever the options.
    assert filter_mechanisms(MECHS, parse_security_options(options)) == offered


# -- handshake ------------------------------------------------------------------------


def feed_all(text: str) -> ServerHello | None:
    parser = HandshakeParser()
    for line in text.splitlines():
        hello = parser.feed(line)
        if hello is not None:
            return hello
    return None


def test_handshake_lines_and_a_real_servers_answer() -> None:
    assert handshake_lines(4321) == b"VERSION\t1\t2\nCPID\t4321\n"
    assert feed_all(DOVECOT_HELLO) == ServerHello(
        2,
        (
            Mechanism("PLAIN", frozenset({"plaintext"})),
            Mechanism("LOGIN", frozenset({"plaintext"})),
            Mechanism("SCRAM-SHA-256", frozenset({"mutual-auth"})),
        ),
    )
    # Unknown lines (a newer server's) are ignored; a flagless MECH has no properties.
    assert feed_all("VERSION\t1\t3\nMECH\tplain\nFUTURE\tx\nDONE\n") == ServerHello(
        3, (Mechanism("PLAIN", frozenset()),)
    )
    assert feed_all("VERSION\t1\t2\n") is None


@pytest.mark.parametrize(
    ("text", "warning"),
    [
        ("VERSION\t2\t0\n", "SASL: Protocol version mismatch (2 vs. 1)"),
        ("VERSION\tx\n", "SASL: Protocol version error"),
        ("MECH\tPLAIN\nDONE\n", "SASL: Protocol version error"),
        (
            "VERSION\t1\t2\nSPID\t7\n",
            "SASL: Connected to wrong auth socket (auth-master instead of auth-client)",
        ),
    ],
)
def test_bad_handshakes_carry_postfixs_warning(text: str, warning: str) -> None:
    with pytest.raises(HandshakeError) as caught:
        feed_all(text)
    assert str(caught.value) == warning


# -- requests -------------------------------------------------------------------------


def test_auth_line_with_and_without_initial_response() -> None:
    head = (
        "AUTH\t7\tPLAIN\tservice=smtp\tnologin\tlip=192.0.2.1\tlport=587"
        "\trip=198.51.100.7\trport=40001"
    )
    assert AuthRequest(7, "PLAIN", PEER, None).encode() == (head + "\n").encode()
    assert AuthRequest(7, "PLAIN", PEER, b"").encode() == (head + "\tresp=\n").encode()
    assert (
        AuthRequest(7, "PLAIN", PEER, b"\0u\0p").encode() == (head + "\tresp=AHUAcA==\n").encode()
    )


def test_auth_line_marks_tls_and_escapes_values() -> None:
    peer = SaslPeer("sm\ttp", "::1", 25, "::1", 1, tls=True)
    line = AuthRequest(1, "LOGIN", peer, None).encode()
    assert line == (
        b"AUTH\t1\tLOGIN\tservice=sm\001ttp\tnologin"
        b"\tlip=::1\tlport=25\trip=::1\trport=1\tsecured\n"
    )


def test_cont_and_cancel_lines() -> None:
    assert cont_line(3, b"user") == b"CONT\t3\tdXNlcg==\n"
    assert cont_line(3, b"") == b"CONT\t3\t\n"
    assert cancel_line(3) == b"CANCEL\t3\n"


# -- replies --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        ("OK\t1\tuser=user", Reply(1, Accepted("user"))),
        ("OK\t2\tuser=us\001ter", Reply(2, Accepted("us?er"))),
        ("CONT\t3\tVXNlcm5hbWU6", Reply(3, Continue(b"Username:"))),
        ("CONT\t4\t", Reply(4, Continue(b""))),
        ("FAIL\t5\tuser=user", Reply(5, Rejected("authentication failure", "user"))),
        ("FAIL\t6", Reply(6, Rejected("authentication failure", None))),
        (
            "FAIL\t7\tcode=invalid_base64\treason=Invalid base64 data in initial response",
            Reply(7, Rejected("Invalid base64 data in initial response", None)),
        ),
        ("FAIL\t8\tuser=u\ttemp", Reply(8, Rejected("authentication failure", "u", True))),
        (
            "FAIL\t9\tuser=u\tcode=temp_fail",
            Reply(9, Rejected("authentication failure", "u", True)),
        ),
        (
            "OK\t10",
            Reply(
                10,
                Rejected(BACKEND_ERROR, None, temporary=True),
                "missing Dovecot server OK username field",
            ),
        ),
        (
            "CONT\t11",
            Reply(
                11,
                Rejected(BACKEND_ERROR, None, temporary=True),
                "missing Dovecot server CONT reply field",
            ),
        ),
        (
            "CONT\t12\t!!",
            Reply(
                12,
                Rejected(BACKEND_ERROR, None, temporary=True),
                "invalid base64 in Dovecot server CONT reply field",
            ),
        ),
    ],
)
def test_replies(line: str, reply: Reply) -> None:
    assert parse_reply(line) == reply


@pytest.mark.parametrize("line", ["", "SPID\t1", "OK", "OK\tx\tuser=u", "NOTIFY\t1"])
def test_lines_that_are_no_replies_are_ignored(line: str) -> None:
    assert parse_reply(line) is None


# -- DovecotBackend against scripted servers ------------------------------------------

# The lines to answer a line with; None hangs up.
Answer = Callable[[str], list[str] | None]


async def scripted_server(
    path: Path, hello: str, answer: Answer, received: list[str]
) -> asyncio.Server:
    """A unix-socket server that sends ``hello``, then ``answer(line)`` for each line."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(hello.encode())
        while line := await reader.readline():
            text = line.decode().rstrip("\n")
            received.append(text)
            replies = answer(text)
            if replies is None:
                break
            for reply in replies:
                writer.write(reply.encode() + b"\n")
        writer.close()

    return await asyncio.start_unix_server(handle, str(path))


def run(
    tmp_path: Path,
    hello: str,
    answer: Answer,
    test: Callable[[DovecotBackend, list[str], list[str]], Awaitable[None]],
) -> None:
    async def main() -> None:
        received: list[str] = []
        warnings: list[str] = []
        server = await scripted_server(tmp_path / "auth", hello, answer, received)
        backend = DovecotBackend(str(tmp_path / "auth"), timeout=0.5, warn=warnings.append)
        try:
            await test(backend, received, warnings)
        finally:
            await backend.aclose()
            server.close()

    asyncio.run(main())


def silent(line: str) -> list[str]:
    return []


def request_id(line: str) -> str:
    return line.split("\t")[1]


def test_backend_is_a_sasl_backend(tmp_path: Path) -> None:
    async def test(backend: DovecotBackend, received: list[str], warnings: list[str]) -> None:
        typed: SaslBackend = backend
        assert await typed.mechanisms() == ("PLAIN", "LOGIN", "SCRAM-SHA-256")
        assert received[0] == "VERSION\t1\t2"
        assert received[1].startswith("CPID\t")

    run(tmp_path, DOVECOT_HELLO, silent, test)


def test_a_silent_server_times_out_and_is_told_to_cancel(tmp_path: Path) -> None:
    async def test(backend: DovecotBackend, received: list[str], warnings: list[str]) -> None:
        result = await backend.exchange("PLAIN", PEER).step(b"\0user\0secret")
        assert result == Rejected(CONNECTION_LOST, None, temporary=True)
        for _ in range(100):  # the server reads the CANCEL when the loop lets it
            if received[-1].startswith("CANCEL"):
                break
            await asyncio.sleep(0.02)
        assert received[-1] == "CANCEL\t1"
        assert warnings == ["SASL: timeout waiting for a Dovecot auth server reply (0.5s)"]
        # The password never shows in what we log.
        assert "secret" not in "".join(warnings)

    run(tmp_path, DOVECOT_HELLO, silent, test)


def test_an_unfinished_handshake_is_a_connect_failure(tmp_path: Path) -> None:
    async def test(backend: DovecotBackend, received: list[str], warnings: list[str]) -> None:
        assert await backend.mechanisms() == ()
        assert await backend.exchange("PLAIN", PEER).step(None) == Rejected(
            CANT_CONNECT, None, temporary=True
        )
        assert warnings[0].endswith("failed: timed out")

    run(tmp_path, "VERSION\t1\t2\nMECH\tPLAIN\n", silent, test)


def test_a_wrong_major_version_is_refused(tmp_path: Path) -> None:
    async def test(backend: DovecotBackend, received: list[str], warnings: list[str]) -> None:
        assert await backend.exchange("PLAIN", PEER).step(None) == Rejected(
            CANT_CONNECT, None, temporary=True
        )
        assert warnings == ["SASL: Protocol version mismatch (2 vs. 1)"]

    run(tmp_path, "VERSION\t2\t0\nDONE\n", silent, test)


def test_ok_without_user_is_a_backend_error(tmp_path: Path) -> None:
    def answer(line: str) -> list[str]:
        return [f"OK\t{request_id(line)}"] if line.startswith("AUTH") else []

    async def test(backend: DovecotBackend, received: list[str], warnings: list[str]) -> None:
        result = await backend.exchange("PLAIN", PEER).step(b"\0u\0p")
        assert result == Rejected(BACKEND_ERROR, None, temporary=True)
        assert warnings == ["missing Dovecot server OK username field"]

    run(tmp_path, DOVECOT_HELLO, answer, test)


def test_replies_out_of_order_reach_their_own_exchange(tmp_path: Path) -> None:
    held: list[str] = []

    def answer(line: str) -> list[str]:
        # Hold the first request's reply until the second arrives, then answer both,
        # the second first; each names the user it was asked about.
        if not line.startswith("AUTH"):
            return []
        user = base64.b64decode(line.split("resp=")[1]).split(b"\0")[1].decode()
        held.append(f"OK\t{request_id(line)}\tuser={user}")
        return list(reversed(held)) if len(held) == 2 else []

    async def test(backend: DovecotBackend, received: list[str], warnings: list[str]) -> None:
        first = backend.exchange("PLAIN", PEER).step(b"\0alice\0a")
        second = backend.exchange("PLAIN", PEER).step(b"\0bob\0b")
        assert list(await asyncio.gather(first, second)) == [Accepted("alice"), Accepted("bob")]

    run(tmp_path, DOVECOT_HELLO, answer, test)


def test_private_and_unknown_mechanisms_are_never_sent(tmp_path: Path) -> None:
    hello = "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nMECH\tEXTERNAL\tprivate\nDONE\n"

    async def test(backend: DovecotBackend, received: list[str], warnings: list[str]) -> None:
        assert await backend.mechanisms() == ("PLAIN",)
        result = await backend.exchange("external", PEER).step(None)
        assert result == Rejected("Invalid authentication mechanism", None)
        assert not [line for line in received if line.startswith("AUTH")]

    run(tmp_path, hello, silent, test)


def test_a_closed_connection_fails_the_exchange_in_flight(tmp_path: Path) -> None:
    def answer(line: str) -> list[str] | None:
        if line.startswith("AUTH"):
            return [f"CONT\t{request_id(line)}\tVXNlcm5hbWU6"]
        return None if line.startswith("CONT") else []  # it goes away on the CONT

    async def test(backend: DovecotBackend, received: list[str], warnings: list[str]) -> None:
        exchange = backend.exchange("LOGIN", PEER)
        assert await exchange.step(None) == Continue(b"Username:")
        assert await exchange.step(b"user") == Rejected(CONNECTION_LOST, None, temporary=True)
        assert not [w for w in warnings if "timeout" in w]

    run(tmp_path, DOVECOT_HELLO, answer, test)
