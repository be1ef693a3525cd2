"""The Python peer of the benchmark: aiosmtpd 1.4.6 doing the same job as mailseal.

Runs in its own venv (``benchmarks/.work/aiosmtpd-venv``, made by ``benchmarks/run``),
never in the project's. Three listeners, as ``mailseal init`` configures them:

- smtp (port 25 style): STARTTLS offered, not required, no AUTH;
- submission (587 style): STARTTLS required, AUTH PLAIN/LOGIN required;
- submissions (465 style): implicit TLS, AUTH required.

Every accepted message is written to a Maildir-like directory the way a durable MTA
must before it answers 250: a new file in ``tmp/``, ``fsync``, ``rename`` into ``new/``,
``fsync`` of ``new/``. The disk work runs in the default thread pool, so the event loop
keeps serving other sessions (what a competent aiosmtpd deployment does).

AUTH checks the password against the same passwd-file line the other servers read
(``user:{SCHEME}hash``): ``{PLAIN}`` compared in constant time, ``{ARGON2ID}`` with
argon2-cffi (in a thread, as it is slow on purpose).
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import itertools
import logging
import os
import ssl
import sys
import warnings
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

_counter = itertools.count()


class MaildirHandler:
    def __init__(self, maildir: Path) -> None:
        self.tmp = maildir / "tmp"
        self.new = maildir / "new"
        for path in (self.tmp, self.new, maildir / "cur"):
            path.mkdir(parents=True, exist_ok=True)
        self.new_fd = os.open(self.new, os.O_RDONLY | os.O_DIRECTORY)
        self.pid = os.getpid()

    def _write(self, content: bytes) -> None:
        name = f"{self.pid}.{next(_counter)}.aiosmtpd"
        tmp = self.tmp / name
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp.rename(self.new / name)
        os.fsync(self.new_fd)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        content = envelope.original_content or b""
        await asyncio.get_running_loop().run_in_executor(None, self._write, content)
        return "250 2.0.0 Ok: queued"


def _load_users(path: Path) -> dict[str, str]:
    users = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#") and ":" in line:
            name, rest = line.split(":", 1)
            users[name] = rest.split(":", 1)[0]
    return users


class Authenticator:
    def __init__(self, users: dict[str, str]) -> None:
        self.users = users
        self.argon2: Any = None
        if any(stored.upper().startswith("{ARGON2") for stored in users.values()):
            import argon2  # only needed for that scheme

            self.argon2 = argon2.PasswordHasher()

    def check(self, login: str, password: str) -> bool:
        stored = self.users.get(login)
        if stored is None:
            return False
        scheme, _, value = stored[1:].partition("}") if stored.startswith("{") else ("", "", "")
        scheme = scheme.upper()
        if scheme in ("PLAIN", "CLEAR", "CLEARTEXT"):
            return hmac.compare_digest(value.encode(), password.encode())
        if scheme.startswith("ARGON2") and self.argon2 is not None:
            try:
                return bool(self.argon2.verify(value, password))
            except Exception:
                return False
        return False

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = self.check(data.login.decode(errors="replace"), data.password.decode(errors="replace"))
        return AuthResult(success=ok, handled=False)


async def serve(args: argparse.Namespace) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    handler = MaildirHandler(Path(args.maildir))
    auth = Authenticator(_load_users(Path(args.users)))
    loop = asyncio.get_running_loop()
    common: dict[str, Any] = {
        "hostname": "mail.example.test",
        "data_size_limit": args.size_limit,
        "timeout": 300,
    }

    def smtp() -> SMTP:
        return SMTP(handler, tls_context=context, **common)

    def submission() -> SMTP:
        return SMTP(
            handler,
            tls_context=context,
            require_starttls=True,
            auth_required=True,
            authenticator=auth,
            **common,
        )

    def submissions() -> SMTP:
        # TLS from the first byte: the listener wraps the transport, which aiosmtpd
        # does not count as TLS (only its own STARTTLS); AUTH is safe here all the same.
        return SMTP(
            handler, auth_required=True, auth_require_tls=False, authenticator=auth, **common
        )

    servers = [
        await loop.create_server(smtp, "127.0.0.1", args.smtp, backlog=4096),
        await loop.create_server(submission, "127.0.0.1", args.submission, backlog=4096),
        await loop.create_server(submissions, "127.0.0.1", args.smtps, ssl=context, backlog=4096),
    ]
    print("aiosmtpd_server: ready", flush=True)
    stop = asyncio.Event()
    import signal

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


def main() -> int:
    # aiosmtpd 1.4.6 warns "Session.login_data is deprecated" on every AUTH.
    warnings.simplefilter("ignore")
    # ... and logs "auth_required == True but auth_require_tls == False" per 465 session.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smtp", type=int, required=True)
    parser.add_argument("--submission", type=int, required=True)
    parser.add_argument("--smtps", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--maildir", required=True)
    parser.add_argument("--users", required=True)
    parser.add_argument("--size-limit", type=int, default=104857600)
    asyncio.run(serve(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
