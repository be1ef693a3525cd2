"""The built-in SASL backend (``smtpd_sasl_type = mailseal``): a passwd-file and our mechanisms.

Mechanisms come from :mod:`mailseal.smtp.sasl` (PLAIN, LOGIN, SCRAM-SHA-256); users from
``smtpd_sasl_passwd_file`` (Dovecot's passwd-file format, :mod:`.passwd_file`), re-read
when it changes.

Checking a password is slow on purpose (argon2id, bcrypt), so it runs in worker threads,
never on the event loop, and two limits keep a login flood from starving everyone else:

- at most ``smtpd_sasl_verify_concurrency`` checks run at once (a semaphore), and
- one client address holds at most one place in that queue at a time (a lock per
  address), so a flood from one address waits behind itself while a user elsewhere
  is served after at most one check's time.

An unknown user costs the same work as a wrong password (a check against a dummy hash),
so the timing does not tell which user names exist.

Successful checks are remembered for a short time (Dovecot's auth cache does the same),
so a mail client that logs in for every message pays the slow hash once per
:data:`CACHE_TTL`: the cache keeps an HMAC of user and password under a per-process
key (never the password), with the stored hash it was checked against, so a password
changed in the file stops matching at once. Failures are never cached: every wrong
guess costs a full check.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mailseal.services.sasl.backend import (
    Accepted,
    Continue,
    Rejected,
    SaslExchange,
    SaslPeer,
    SaslResult,
)
from mailseal.services.sasl.hashes import UnsupportedHash, hash_password, verify_password
from mailseal.services.sasl.passwd_file import PasswdEntry, PasswdFileError, PasswdStore
from mailseal.smtp.sasl.mechanisms import SERVER_MECHANISMS, server_mechanism
from mailseal.smtp.sasl.steps import (
    Challenge,
    Failure,
    NeedCredentials,
    ServerMechanism,
    Step,
    Success,
    VerifyPassword,
)

__all__ = ["CACHE_SIZE", "CACHE_TTL", "FAILURE_REASON", "LocalBackend"]

CACHE_TTL = 300.0  # seconds a verified password is trusted without a new check
CACHE_SIZE = 1000  # users remembered at most; the oldest entry goes first

# What Cyrus SASL says for a wrong password; Postfix puts it after "authentication failed: ".
FAILURE_REASON = "authentication failure"
_UNAVAILABLE = "authentication backend unavailable"


@dataclass
class _Gate:
    """The two limits of the module docstring."""

    slots: asyncio.Semaphore
    per_client: dict[str, asyncio.Lock] = field(default_factory=dict)
    # Checks holding or waiting for each address's lock. The lock goes only when the
    # last one leaves: a released lock whose next waiter has not woken yet still
    # serialises that address (lock.locked() would say False in that instant).
    holders: dict[str, int] = field(default_factory=dict)

    async def run(self, client: str, work: Callable[[], SaslResult]) -> SaslResult:
        lock = self.per_client.setdefault(client, asyncio.Lock())
        self.holders[client] = self.holders.get(client, 0) + 1
        try:
            async with lock, self.slots:
                return await asyncio.get_running_loop().run_in_executor(None, work)
        finally:
            self.holders[client] -= 1
            if not self.holders[client]:
                del self.holders[client], self.per_client[client]


class LocalBackend:
    """``SaslBackend`` over a passwd-file (see the module docstring)."""

    def __init__(
        self,
        path: str,
        *,
        concurrency: int = 2,
        warn: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._warn = warn or (lambda message: None)
        self._store = PasswdStore(path, on_error=lambda error: self._warn(str(error)))
        self._gate = _Gate(asyncio.Semaphore(max(1, concurrency)))
        # Keeps SCRAM's made-up salt for an unknown user the same in every session.
        self._secret = secrets.token_bytes(32)
        self._dummy: str | None = None
        self._clock = clock
        self._cache_key = secrets.token_bytes(32)
        self._cache: dict[bytes, tuple[str, float]] = {}  # digest -> (stored hash, expiry)
        self._cache_lock = threading.Lock()  # checks store from worker threads
        self.cache_hits = 0

    async def mechanisms(self) -> tuple[str, ...]:
        return SERVER_MECHANISMS

    def exchange(self, mechanism: str, peer: SaslPeer) -> SaslExchange:
        machine = server_mechanism(mechanism, secrets.token_urlsafe(18), secret=self._secret)
        return _LocalExchange(self, machine, peer.remote_addr)

    async def aclose(self) -> None:
        return None

    # -- work done in threads --------------------------------------------------------

    def entry(self, user: str) -> PasswdEntry | None:
        """The user's line; ``PasswdFileError`` only when no good copy was ever read."""
        return self._store.lookup(user)

    def check_password(self, user: str, password: str) -> SaslResult:
        try:
            entry = self.entry(user)
        except PasswdFileError as error:
            self._warn(str(error))
            return Rejected(_UNAVAILABLE, user, temporary=True)
        if entry is None:
            verify_password(self._dummy_hash(), password)  # same cost as a real check
            return Rejected(FAILURE_REASON, user)
        try:
            ok = verify_password(entry.password, password)
        except UnsupportedHash as error:
            self._warn(f"{self._store.path}: user {user}: {error}")
            return Rejected(FAILURE_REASON, user)
        if not ok:
            return Rejected(FAILURE_REASON, user)
        self._remember(user, password, entry.password)
        return Accepted(entry.user)

    # -- the cache of verified passwords ----------------------------------------------

    def _digest(self, user: str, password: str) -> bytes:
        text = f"{user}\0{password}".encode("utf-8", "surrogateescape")
        return hmac.new(self._cache_key, text, hashlib.sha256).digest()

    def _remember(self, user: str, password: str, stored: str) -> None:
        with self._cache_lock:
            self._cache[self._digest(user, password)] = (stored, self._clock() + CACHE_TTL)
            while len(self._cache) > CACHE_SIZE:
                del self._cache[next(iter(self._cache))]

    def cached(self, user: str, password: str) -> SaslResult | None:
        """Accepted without a new check when this password was verified lately, else None."""
        with self._cache_lock:
            remembered = self._cache.get(self._digest(user, password))
        if remembered is None or remembered[1] < self._clock():
            return None
        try:
            entry = self.entry(user)  # a stat(); the file is re-read only when it changed
        except PasswdFileError:
            return None
        # The hash it was checked against must still be the user's: a changed
        # password (mailseal passwd) or a removed user is checked afresh.
        if entry is None or not hmac.compare_digest(entry.password, remembered[0]):
            return None
        self.cache_hits += 1
        return Accepted(entry.user)

    def _dummy_hash(self) -> str:
        if self._dummy is None:
            self._dummy = hash_password(secrets.token_urlsafe(16))
        return self._dummy

    async def gated(self, client: str, work: Callable[[], SaslResult]) -> SaslResult:
        return await self._gate.run(client, work)


class _LocalExchange:
    """One exchange: drive the mechanism, do its lookups and checks off the loop."""

    def __init__(self, backend: LocalBackend, machine: ServerMechanism | None, client: str) -> None:
        self._backend = backend
        self._machine = machine
        self._client = client
        self._started = False
        self._closed = False

    async def step(self, response: bytes | None) -> SaslResult:
        machine = self._machine
        if machine is None or self._closed:
            return Rejected("Invalid authentication mechanism", None)
        if not self._started:
            self._started = True
            result = machine.start(response)
        else:
            result = machine.respond(response or b"")
        return await self._result(machine, result)

    def close(self) -> None:
        self._closed = True

    async def _result(self, machine: ServerMechanism, step: Step) -> SaslResult:
        match step:
            case Challenge(data=data):
                return Continue(data)
            case VerifyPassword(username=user, password=password):
                backend = self._backend
                remembered = backend.cached(user, password)
                if remembered is not None:
                    return remembered
                return await backend.gated(
                    self._client, lambda: backend.check_password(user, password)
                )
            case NeedCredentials(username=user):
                return await self._scram_credentials(machine, user)
            case Success(username=user):
                return Accepted(user)
            case Failure(reason=reason, username=who):
                return Rejected(reason or FAILURE_REASON, who)
        raise AssertionError(f"unknown SASL step {step!r}")

    async def _scram_credentials(self, machine: ServerMechanism, user: str) -> SaslResult:
        loop = asyncio.get_running_loop()
        try:
            entry = await loop.run_in_executor(None, self._backend.entry, user)
        except PasswdFileError:
            return Rejected(_UNAVAILABLE, user, temporary=True)
        # An unknown user still gets a challenge: the mechanism fails it at the proof.
        return await self._result(machine, machine.credentials(entry.scram if entry else None))
