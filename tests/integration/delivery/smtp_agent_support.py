"""Helpers for the smtp(8) agent tests: a Config, a log that keeps its lines, requests."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path

from mailseal.config.errors import Setting
from mailseal.config.facts import SystemFacts
from mailseal.config.model import Config
from mailseal.delivery.smtp import RecipientResult, SmtpAgent, SmtpRequest
from mailseal.log.sinks import MailLog, Severity
from mailseal.net.dns import Resolver
from mailseal.queue.envelope import Envelope, Recipient

MESSAGE = (
    b"From: sender@client.example\r\n"
    b"To: postmaster@example.test\r\n"
    b"Subject: smtp agent test\r\n"
    b"Message-ID: <agent-test@client.example>\r\n"
    b"\r\n"
    b"Hello over SMTP.\r\n"
    b".leading dot stays\r\n"
)


@dataclass
class MemorySink:
    """Keeps ``program[N]: message`` lines, as the mail log would show them."""

    lines: list[str] = field(default_factory=list)

    def write(self, severity: Severity, program: str, number: int, message: str) -> None:
        self.lines.append(f"{program}[{number}]: {message}")

    def close(self) -> None:
        return None

    def text(self) -> str:
        return "\n".join(self.lines)


def agent_config(directory: Path, **settings: str) -> Config:
    """The sending side's configuration (the agent runs in the test process)."""
    base = {
        "myhostname": "sender.example.org",
        "smtp_tls_loglevel": "1",
        "smtp_connect_timeout": "5s",
        "smtp_helo_timeout": "5s",
        "smtp_starttls_timeout": "5s",
        "smtp_mail_timeout": "5s",
        "smtp_rcpt_timeout": "5s",
        "smtp_data_init_timeout": "5s",
        "smtp_data_done_timeout": "5s",
        "smtp_data_xfer_timeout": "5s",
        "smtp_quit_timeout": "2s",
        "smtp_rset_timeout": "2s",
        "inet_protocols": "ipv4",
    }
    facts = SystemFacts(hostname="sender.example.org", config_directory=str(directory))
    return Config({k: Setting(v) for k, v in (base | settings).items()}, facts)


def request(
    nexthop: str,
    *recipients: str,
    queue_id: str = "4AgentTest",
    content: bytes = MESSAGE,
    sender: str = "sender@client.example",
    age: float = 0.0,
    smtputf8: bool = False,
) -> SmtpRequest:
    rcpts = tuple(Recipient(r, r) for r in recipients or ("postmaster@example.test",))
    envelope = Envelope(sender, rcpts, time.time() - age, smtputf8=smtputf8)
    return SmtpRequest(queue_id, nexthop, sender, rcpts, content, envelope)


class Sender:
    """An agent with its own log, driven from synchronous tests on one event loop."""

    def __init__(self, config: Config, resolver: Resolver | None = None) -> None:
        self.sink = MemorySink()
        self.loop = asyncio.new_event_loop()
        self.agent = SmtpAgent(
            config, MailLog(self.sink, "sender"), itertools.count(100), resolver=resolver
        )

    def deliver(self, req: SmtpRequest, timeout: float = 20.0) -> list[RecipientResult]:
        return self.loop.run_until_complete(asyncio.wait_for(self.agent.deliver(req), timeout))

    def close(self) -> None:
        self.loop.run_until_complete(self.agent.aclose())
        self.loop.run_until_complete(asyncio.sleep(0.05))  # let transports finish closing
        self.loop.close()

    def log(self) -> str:
        return self.sink.text()
