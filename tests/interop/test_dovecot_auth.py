"""DovecotBackend against Debian's real Dovecot auth server (smtpd_sasl_type = dovecot).

A private Dovecot (``mailseal.testing.dovecot``: no network listener, only its auth
client socket) with passwd-file users hashed by ``doveadm pw -s SCRAM-SHA-256``.
"""

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from mailseal.services.sasl.backend import (
    Accepted,
    Continue,
    Rejected,
    SaslBackend,
    SaslPeer,
    SaslResult,
)
from mailseal.services.sasl.dovecot import (
    CANT_CONNECT,
    CONNECTION_LOST,
    INVALID_MECHANISM,
    DovecotBackend,
)
from mailseal.testing.dovecot import DOVECOT, DovecotAuthServer

pytestmark = pytest.mark.interop

USERS = {"user": "secret", "other": "pässword"}
PEER = SaslPeer("smtp", "127.0.0.1", 587, "127.0.0.1", 40000, tls=True)


@pytest.fixture(autouse=True)
def _need_dovecot() -> None:
    if not Path(DOVECOT).exists():
        pytest.fail("Dovecot is not installed: run ./dev test (it installs debian-packages.txt)")


@pytest.fixture(scope="module")
def dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DovecotAuthServer]:
    with DovecotAuthServer(tmp_path_factory.mktemp("dovecot"), USERS) as server:
        yield server


Body = Callable[[DovecotBackend, list[str]], Awaitable[None]]


def run_with(
    path: Path, test: Body, *, timeout: float = 30.0, security_options: str = "noanonymous"
) -> None:
    """Run ``test(backend, warnings)`` on a fresh event loop, then close the backend."""

    async def main() -> None:
        warnings: list[str] = []
        backend = DovecotBackend(
            str(path), timeout=timeout, security_options=security_options, warn=warnings.append
        )
        try:
            await test(backend, warnings)
        finally:
            await backend.aclose()
        # Whatever was logged, no password ever appears in it.
        for password in USERS.values():
            assert all(password not in warning for warning in warnings)

    asyncio.run(main())


async def plain(backend: SaslBackend, user: str, password: str) -> SaslResult:
    exchange = backend.exchange("PLAIN", PEER)
    return await exchange.step(b"\0" + user.encode() + b"\0" + password.encode())


async def login(backend: SaslBackend, user: str, password: str) -> list[SaslResult]:
    exchange = backend.exchange("login", PEER)
    results = [await exchange.step(None)]
    results.append(await exchange.step(user.encode()))
    results.append(await exchange.step(password.encode()))
    return results


def test_mechanisms_are_dovecots(dovecot: DovecotAuthServer) -> None:
    async def body(backend: DovecotBackend, warnings: list[str]) -> None:
        assert await backend.mechanisms() == ("PLAIN", "LOGIN", "SCRAM-SHA-256")

    run_with(dovecot.socket_path, body)


def test_noplaintext_leaves_scram_only(dovecot: DovecotAuthServer) -> None:
    async def body(backend: DovecotBackend, warnings: list[str]) -> None:
        assert await backend.mechanisms() == ("SCRAM-SHA-256",)
        # A mechanism we do not offer never reaches Dovecot (it would drop the connection).
        assert await plain(backend, "user", "secret") == Rejected(INVALID_MECHANISM, None)
        assert isinstance(await backend.exchange("SCRAM-SHA-256", PEER).step(None), Continue)

    run_with(dovecot.socket_path, body, security_options="noanonymous, noplaintext")


def test_plain_right_and_wrong_password(dovecot: DovecotAuthServer) -> None:
    async def body(backend: DovecotBackend, warnings: list[str]) -> None:
        assert await plain(backend, "user", "secret") == Accepted("user")
        assert await plain(backend, "other", "pässword") == Accepted("other")
        wrong = await plain(backend, "user", "wrong")
        assert isinstance(wrong, Rejected)
        assert not wrong.temporary
        assert wrong.username == "user"
        assert wrong.reason == "authentication failure"
        # An unknown user fails the same way (Dovecot does not tell which part was wrong).
        unknown = await plain(backend, "nobody", "secret")
        assert isinstance(unknown, Rejected)
        assert not unknown.temporary

    run_with(dovecot.socket_path, body)


def test_plain_without_and_with_empty_initial_response(dovecot: DovecotAuthServer) -> None:
    async def body(backend: DovecotBackend, warnings: list[str]) -> None:
        exchange = backend.exchange("PLAIN", PEER)
        # No initial response: Dovecot asks for one with an empty challenge.
        assert await exchange.step(None) == Continue(b"")
        assert await exchange.step(b"\0user\0secret") == Accepted("user")
        empty = await backend.exchange("PLAIN", PEER).step(b"")
        assert isinstance(empty, Rejected)
        assert not empty.temporary

    run_with(dovecot.socket_path, body)


def test_login_takes_three_steps(dovecot: DovecotAuthServer) -> None:
    async def body(backend: DovecotBackend, warnings: list[str]) -> None:
        assert await login(backend, "user", "secret") == [
            Continue(b"Username:"),
            Continue(b"Password:"),
            Accepted("user"),
        ]
        *challenges, last = await login(backend, "user", "nope")
        assert challenges == [Continue(b"Username:"), Continue(b"Password:")]
        assert isinstance(last, Rejected)
        assert not last.temporary

    run_with(dovecot.socket_path, body)


def test_finished_exchange_refuses_more_steps(dovecot: DovecotAuthServer) -> None:
    async def body(backend: DovecotBackend, warnings: list[str]) -> None:
        exchange = backend.exchange("PLAIN", PEER)
        assert await exchange.step(b"\0user\0secret") == Accepted("user")
        with pytest.raises(RuntimeError):
            await exchange.step(b"more")

    run_with(dovecot.socket_path, body)


def test_aborted_exchange_then_a_new_one(dovecot: DovecotAuthServer) -> None:
    async def body(backend: DovecotBackend, warnings: list[str]) -> None:
        exchange = backend.exchange("LOGIN", PEER)
        assert await exchange.step(None) == Continue(b"Username:")
        assert await exchange.step(b"user") == Continue(b"Password:")
        exchange.close()
        exchange.close()  # idempotent
        assert await login(backend, "user", "secret") == [
            Continue(b"Username:"),
            Continue(b"Password:"),
            Accepted("user"),
        ]
        # An exchange closed before its first step costs nothing either.
        backend.exchange("PLAIN", PEER).close()
        assert await plain(backend, "user", "secret") == Accepted("user")
        assert warnings == []

    run_with(dovecot.socket_path, body)


def test_unknown_mechanism_keeps_the_connection(dovecot: DovecotAuthServer) -> None:
    async def body(backend: DovecotBackend, warnings: list[str]) -> None:
        refused = await backend.exchange("CRAM-MD5", PEER).step(None)
        assert refused == Rejected(INVALID_MECHANISM, None)
        assert await plain(backend, "user", "secret") == Accepted("user")

    run_with(dovecot.socket_path, body)


def test_twenty_concurrent_exchanges(dovecot: DovecotAuthServer) -> None:
    async def body(backend: DovecotBackend, warnings: list[str]) -> None:
        cases = [(i, "user" if i % 2 else "other", i % 3 != 0) for i in range(20)]

        async def one(i: int, user: str, right: bool) -> SaslResult:
            password = USERS[user] if right else "wrong"
            if i % 4 < 2:
                return await plain(backend, user, password)
            return (await login(backend, user, password))[-1]

        results = await asyncio.gather(*(one(*case) for case in cases))
        for (_, user, right), result in zip(cases, results, strict=True):
            if right:
                assert result == Accepted(user)
            else:
                assert isinstance(result, Rejected)
                assert (result.username, result.temporary) == (user, False)

    run_with(dovecot.socket_path, body)


def test_scram_sha_256_through_dovecot(dovecot: DovecotAuthServer) -> None:
    async def body(backend: DovecotBackend, warnings: list[str]) -> None:
        assert await scram(backend, "user", "secret") == Accepted("user")
        wrong = await scram(backend, "user", "wrong")
        assert isinstance(wrong, Rejected)
        assert not wrong.temporary

    run_with(dovecot.socket_path, body)


async def scram(backend: DovecotBackend, user: str, password: str) -> SaslResult:
    """A hand-written RFC 7677 client: client-first, server-first, client-final."""
    exchange = backend.exchange("SCRAM-SHA-256", PEER)
    bare = f"n={user},r=clientnonce0123456789"
    first = await exchange.step(b"n,," + bare.encode())
    assert isinstance(first, Continue)
    server_first = first.challenge.decode()
    fields = dict(item.split("=", 1) for item in server_first.split(","))
    assert fields["r"].startswith("clientnonce0123456789")
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(fields["s"]), int(fields["i"])
    )
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    without_proof = f"c=biws,r={fields['r']}"
    message = f"{bare},{server_first},{without_proof}".encode()
    signature = hmac.digest(hashlib.sha256(client_key).digest(), message, "sha256")
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    final = await exchange.step(f"{without_proof},p={base64.b64encode(proof).decode()}".encode())
    if not isinstance(final, Continue):
        return final
    # The server's signature proves it knew the password too (RFC 5802 section 3).
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    expected = base64.b64encode(hmac.digest(server_key, message, "sha256")).decode()
    assert final.challenge.decode() == f"v={expected}"
    return await exchange.step(b"")


def test_missing_socket_is_a_temporary_failure(tmp_path: Path) -> None:
    async def body(backend: DovecotBackend, warnings: list[str]) -> None:
        started = time.monotonic()
        assert await backend.mechanisms() == ()
        result = await plain(backend, "user", "secret")
        assert result == Rejected(CANT_CONNECT, None, temporary=True)
        assert time.monotonic() - started < 2.0
        assert warnings[0] == (
            f"SASL: Connect to Dovecot auth socket '{tmp_path / 'none'}' failed: "
            "No such file or directory"
        )

    run_with(tmp_path / "none", body, timeout=5.0)


def test_dovecot_stopped_midway_then_restarted(tmp_path: Path) -> None:
    server = DovecotAuthServer(tmp_path / "dovecot", USERS).start()
    try:

        async def body(backend: DovecotBackend, warnings: list[str]) -> None:
            exchange = backend.exchange("LOGIN", PEER)
            assert await exchange.step(None) == Continue(b"Username:")
            await asyncio.to_thread(server.stop)
            lost = await exchange.step(b"user")
            assert lost == Rejected(CONNECTION_LOST, None, temporary=True)
            down = await plain(backend, "user", "secret")
            assert down == Rejected(CANT_CONNECT, None, temporary=True)
            await asyncio.to_thread(server.start)
            assert await plain(backend, "user", "secret") == Accepted("user")
            assert await backend.mechanisms() == ("PLAIN", "LOGIN", "SCRAM-SHA-256")
            # The loss was seen at once, not after a timeout.
            assert not [w for w in warnings if "timeout" in w]

        run_with(server.socket_path, body, timeout=10.0)
    finally:
        server.stop()
