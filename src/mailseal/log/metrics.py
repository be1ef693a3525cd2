"""Prometheus counters derived from the mail-log lines themselves, as postfix_exporter does.

Every line the :class:`~mailseal.log.sinks.MailLog` writes is also handed to
:meth:`LogMetrics.observe`, so a metric can never disagree with the log: what
the log says happened is what is counted. The line shapes are those of
:mod:`mailseal.log.format`, :mod:`mailseal.log.smtp_client`,
:mod:`mailseal.tls.phrases` and :mod:`mailseal.tls.client_phrases`; metric and
label names follow postfix_exporter (``postfix_smtpd_tls_connections_total``
labels ``trust, protocol, cipher, secret_bits, algorithm_bits``...) with the
``mailseal_`` prefix, plus a ``service`` label: the program name after the
first component, as postfix_exporter names a subprocess (``smtpd``,
``submission/smtpd``).

The observer runs for every line, on the event loop or a queue manager thread,
so it is one dictionary dispatch on the program's last component and a few
precompiled regular expressions. smtpd sessions are followed per
``(program, number)`` from ``connect from`` to ``disconnect from``, to count
each session once with its TLS outcome (``none`` or Postfix's trust word).

No I/O: counters live in the caller's :class:`CollectorRegistry`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

from mailseal.log.sinks import Severity

__all__ = ["DELAY_BUCKETS", "LogMetrics"]

# postfix_exporter's time buckets: 1 ms to two days.
DELAY_BUCKETS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 60.0, 3600.0, 86400.0, 172800.0)
_SIZE_BUCKETS = (1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9)
_RCPT_BUCKETS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)
# Sessions whose disconnect line never came (a crash mid-session) must not pile up.
_MAX_SESSIONS = 50_000
_DELIVERY_AGENTS = frozenset({"local", "virtual", "lmtp", "discard", "error", "pipe"})
_NO_TLS = "none"

_TLS_ESTABLISHED = re.compile(
    r"^(\S+) TLS connection established (?:from|to) \S+?(?: to \S+)?: "
    r"(\S+) with cipher (\S+) \((\d+)/(\d+) bits\)"
)
_SSL_ERROR = re.compile(r"^SSL_(?:accept|connect) error (?:from|to) \S+: (.*)$")
_LIBRARY_PROBLEM = "warning: TLS library problem: "
_SASL_FAILED = re.compile(r"^warning: \S+: SASL (\S+) authentication failed: ")
_CLIENT = re.compile(r"^\S+: client=\S+?(?:, sasl_method=([^,\s]+))?(?:,|$)")
_REJECT = re.compile(r"^\S+: reject: (\S+) from \S+: (\d{3}) ")
_LOST = re.compile(r"^lost connection after (\S+) from ")
_AUTH_COUNT = re.compile(r" auth=(\d+)(?:/(\d+))?(?: |$)")
# log_adhoc.c's order; conn_use= (a cached session's reuse) and tls= are optional.
_STATUS = re.compile(
    r", relay=\S+(?:, conn_use=\d+)?, delay=([0-9.]+), delays=\S+(?:, tls=\S+)?, "
    r"dsn=(\d\.\d{1,3}\.\d{1,3}), status=(\w+) "
)
_INSERT = re.compile(r"^\S+: from=<.*>, size=(\d+), nrcpt=(\d+) \(queue active\)$")
_EXPIRED = re.compile(r"^\S+: from=<.*>, status=(?:expired|force-expired), returned to sender$")
_NOTICE = re.compile(r"^\S+: (sender|postmaster) (non-delivery|delay) notification: ")
_VERIFY_FAILED = re.compile(r"^(?:\w+ )?certificate verification failed for \S+: (.*)$")
_PICKUP = re.compile(r"^\S+: uid=\d+ from=<")


@dataclass
class _Session:
    """What one smtpd session has shown so far (mutable: it follows the log)."""

    service: str
    tls: str = _NO_TLS
    library_problem: str = ""
    sasl_method: str = ""


def service_of(program: str) -> str:
    """``mailseal/submission/smtpd`` -> ``submission/smtpd`` (postfix_exporter's subprocess)."""
    return program.split("/", 1)[1] if "/" in program else program


class LogMetrics:
    """The log-derived metrics; register an instance's :meth:`observe` as a log observer."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, doc: str, labels: tuple[str, ...]) -> Counter:
            return Counter(f"mailseal_{name}", doc, labels, registry=registry)

        def histogram(
            name: str, doc: str, labels: tuple[str, ...], buckets: tuple[float, ...]
        ) -> Histogram:
            return Histogram(f"mailseal_{name}", doc, labels, registry=registry, buckets=buckets)

        svc = ("service",)
        tls = ("trust", "protocol", "cipher", "secret_bits", "algorithm_bits")
        self.log_lines = counter("log_lines", "Mail-log lines by severity.", ("severity",))
        self.connects = counter("smtpd_connects", "Incoming connections.", svc)
        self.sessions = counter(
            "smtpd_sessions", "smtpd sessions at disconnect, by TLS outcome.", (*svc, "tls")
        )
        self.lost = counter("smtpd_connections_lost", "Connections lost.", (*svc, "after_stage"))
        self.smtpd_tls = counter("smtpd_tls_connections", "Incoming TLS connections.", svc + tls)
        self.smtpd_tls_failures = counter(
            "smtpd_tls_handshake_failures", "Failed server TLS handshakes.", (*svc, "reason")
        )
        self.sasl_failures = counter(
            "smtpd_sasl_authentication_failures",
            "SASL authentication failures.",
            (*svc, "mechanism"),
        )
        self.sasl_successes = counter(
            "smtpd_sasl_authentication_successes",
            "Successful AUTH commands (from the disconnect line; the mechanism is the "
            "session's sasl_method, 'unknown' when it queued no mail).",
            (*svc, "mechanism"),
        )
        self.received = counter(
            "smtpd_messages_processed",
            "Messages given a queue ID by smtpd (client= lines).",
            (*svc, "sasl_method"),
        )
        self.rejects = counter("smtpd_messages_rejected", "smtpd rejects.", (*svc, "stage", "code"))
        self.pickup = counter("pickup_messages", "Messages picked up from maildrop.", svc)
        self.cleanup = counter(
            "cleanup_messages_processed", "Messages with a message-id line.", svc
        )
        self.deliveries = counter(
            "delivery_recipients", "Recipient delivery attempts.", ("transport", "status")
        )
        self.delays = histogram(
            "delivery_delay_seconds",
            "Total delay (delay=) of recipient delivery attempts.",
            ("transport", "status"),
            DELAY_BUCKETS,
        )
        self.inserted_size = histogram(
            "qmgr_messages_inserted_size_bytes",
            "Sizes of messages qmgr took in.",
            (),
            _SIZE_BUCKETS,
        )
        self.inserted_rcpts = histogram(
            "qmgr_messages_inserted_recipients", "Recipients per message.", (), _RCPT_BUCKETS
        )
        self.removed = counter("qmgr_messages_removed", "Messages removed from the queue.", ())
        self.expired = counter("qmgr_messages_expired", "Messages expired from the queue.", ())
        self.notices = counter(
            "bounce_notifications", "Notifications queued.", ("recipient", "kind")
        )
        self.smtp_tls = counter("smtp_tls_connections", "Outgoing TLS connections.", tls)
        self.smtp_tls_failures = counter(
            "smtp_tls_handshake_failures", "Failed client TLS handshakes.", ("reason",)
        )
        self.smtp_verify_failures = counter(
            "smtp_tls_verification_failures",
            "Server certificates that failed verification.",
            ("reason",),
        )
        self._sessions: dict[tuple[str, int], _Session] = {}
        self._lock = threading.Lock()  # the queue manager logs from worker threads
        self._handlers: dict[str, Callable[[str, str, int, str], None]] = {
            "smtpd": self._smtpd,
            "smtp": self._smtp,
            "qmgr": self._qmgr,
            "bounce": self._bounce,
            "cleanup": self._cleanup,
            "pickup": self._pickup,
            **dict.fromkeys(_DELIVERY_AGENTS, self._agent),
        }

    def observe(self, severity: Severity, program: str, number: int, message: str) -> None:
        """One log line (a :data:`~mailseal.log.sinks.LogObserver`)."""
        self.log_lines.labels(severity.name.lower()).inc()
        handler = self._handlers.get(program.rpartition("/")[2])
        if handler is not None:
            handler(program, service_of(program), number, message)

    # -- smtpd ------------------------------------------------------------------------

    def _smtpd(self, program: str, service: str, number: int, message: str) -> None:
        key = (program, number)
        if message.startswith("connect from "):
            self.connects.labels(service).inc()
            with self._lock:
                if len(self._sessions) >= _MAX_SESSIONS:
                    self._sessions.pop(next(iter(self._sessions)))
                self._sessions[key] = _Session(service)
        elif message.startswith("disconnect from "):
            with self._lock:
                session = self._sessions.pop(key, None) or _Session(service)
            self._disconnected(session, message)
        elif message.startswith("warning: "):
            self._smtpd_warning(key, service, message)
        elif (match := _TLS_ESTABLISHED.match(message)) is not None:
            self.smtpd_tls.labels(service, *match.groups()).inc()
            self._update(key, tls=match[1])
        elif (match := _CLIENT.match(message)) is not None:
            self.received.labels(service, match[1] or "").inc()
            if match[1]:
                self._update(key, sasl_method=match[1])
        elif (match := _REJECT.match(message)) is not None:
            self.rejects.labels(service, match[1], match[2]).inc()
        elif (match := _LOST.match(message)) is not None:
            self.lost.labels(service, match[1]).inc()
        elif (match := _SSL_ERROR.match(message)) is not None:
            following = self._sessions.get(key)
            reason = (following.library_problem if following else "") or match[1]
            self.smtpd_tls_failures.labels(service, reason).inc()

    def _smtpd_warning(self, key: tuple[str, int], service: str, message: str) -> None:
        if (match := _SASL_FAILED.match(message)) is not None:
            self.sasl_failures.labels(service, match[1]).inc()
        elif message.startswith(_LIBRARY_PROBLEM):
            self._update(key, library_problem=message.removeprefix(_LIBRARY_PROBLEM))

    def _update(self, key: tuple[str, int], **changes: str) -> None:
        with self._lock:
            session = self._sessions.get(key)
            if session is not None:
                for name, value in changes.items():
                    setattr(session, name, value)

    def _disconnected(self, session: _Session, message: str) -> None:
        self.sessions.labels(session.service, session.tls).inc()
        match = _AUTH_COUNT.search(message)
        if match is not None:
            # "auth=N" when every AUTH succeeded, "auth=ok/total" otherwise.
            ok = int(match[1])
            if ok:
                mechanism = session.sasl_method or "unknown"
                self.sasl_successes.labels(session.service, mechanism).inc(ok)

    # -- delivery ---------------------------------------------------------------------

    def _delivered(self, transport: str, message: str) -> bool:
        match = _STATUS.search(message)
        if match is None:
            return False
        delay, _dsn, status = match.groups()
        self.deliveries.labels(transport, status).inc()
        self.delays.labels(transport, status).observe(float(delay))
        return True

    def _agent(self, program: str, service: str, number: int, message: str) -> None:
        self._delivered(program.rpartition("/")[2], message)

    def _smtp(self, program: str, service: str, number: int, message: str) -> None:
        if self._delivered("smtp", message):
            return
        if (match := _TLS_ESTABLISHED.match(message)) is not None:
            self.smtp_tls.labels(*match.groups()).inc()
        elif (match := _SSL_ERROR.match(message)) is not None:
            self.smtp_tls_failures.labels(match[1]).inc()
        elif (match := _VERIFY_FAILED.match(message)) is not None:
            # "untrusted issuer /C=../CN=..": the issuer's name would make a label per CA.
            self.smtp_verify_failures.labels(match[1].split(" /", 1)[0]).inc()

    def _qmgr(self, program: str, service: str, number: int, message: str) -> None:
        if message.endswith(": removed"):
            self.removed.inc()
        elif (match := _INSERT.match(message)) is not None:
            self.inserted_size.observe(float(match[1]))
            self.inserted_rcpts.observe(float(match[2]))
        elif _EXPIRED.match(message) is not None:
            self.expired.inc()
        else:
            self._delivered("qmgr", message)  # a lookup verdict (unknown user...)

    def _bounce(self, program: str, service: str, number: int, message: str) -> None:
        if (match := _NOTICE.match(message)) is not None:
            self.notices.labels(match[1], match[2]).inc()

    def _cleanup(self, program: str, service: str, number: int, message: str) -> None:
        if ": message-id=" in message:
            self.cleanup.labels(service).inc()

    def _pickup(self, program: str, service: str, number: int, message: str) -> None:
        if _PICKUP.match(message) is not None:
            self.pickup.labels(service).inc()
