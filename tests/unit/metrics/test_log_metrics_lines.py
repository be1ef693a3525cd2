"""Log-derived metrics: real lines from the format functions in, exact counter values out."""

import pytest
from prometheus_client import CollectorRegistry

from mailseal.log import format as fmt
from mailseal.log import smtp_client as words
from mailseal.log.metrics import LogMetrics, service_of
from mailseal.log.sinks import MailLog, Severity
from mailseal.tls import client_phrases, phrases
from mailseal.tls.client import CertFailure
from mailseal.tls.outcome import PeerTrust, TlsOutcome

SMTPD = "mailseal/smtpd"
SUBMISSION = "mailseal/submission/smtpd"
TRUSTED = TlsOutcome("TLSv1.3", "TLS_AES_256_GCM_SHA384", 256, 256, PeerTrust.TRUSTED)
ANON = TlsOutcome("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256", 128, 128, PeerTrust.ANONYMOUS)
TIMES = fmt.DeliveryTimes(0.25, 0.1, 0.01, 0.0, 0.14)


class Feed:
    """A LogMetrics on its own registry, fed through a MailLog as the master does."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.metrics = LogMetrics(self.registry)

        class Null:
            def write(self, severity: Severity, program: str, number: int, message: str) -> None:
                pass

            def close(self) -> None:
                pass

        self.log = MailLog(Null(), "mailseal")
        self.log.add_observer(self.metrics.observe)

    # Named apart from MailLog's methods, which ruff takes for logging's (PLE1205).
    def info(self, program: str, number: int, message: str) -> None:
        self.log.info(program, number, message)

    def warning(self, program: str, number: int, message: str) -> None:
        self.log.warning(program, number, message)

    def error(self, program: str, number: int, message: str) -> None:
        self.log.error(program, number, message)

    def value(self, name: str, **labels: str) -> float:
        found = self.registry.get_sample_value(f"mailseal_{name}", labels)
        return 0.0 if found is None else found


def session(feed: Feed, program: str, number: int, lines: list[str], counts: str = "") -> None:
    feed.info(program, number, fmt.connect_from("client.test", "192.0.2.7"))
    for line in lines:
        if line.startswith("warning: "):
            feed.warning(program, number, line.removeprefix("warning: "))
        else:
            feed.info(program, number, line)
    done = fmt.disconnect_from("client.test", "192.0.2.7", [])
    feed.info(program, number, done + (" " + counts if counts else ""))


def test_service_label_is_the_program_after_its_first_component() -> None:
    assert service_of("mailseal/submission/smtpd") == "submission/smtpd"
    assert service_of("postfix/smtpd") == "smtpd"
    assert service_of("smtpd") == "smtpd"


def test_sessions_counted_at_disconnect_with_their_tls_outcome() -> None:
    feed = Feed()
    session(feed, SMTPD, 1, [phrases.established_from(TRUSTED, "client.test", "192.0.2.7")])
    session(feed, SMTPD, 2, [])
    session(feed, SUBMISSION, 3, [phrases.established_from(ANON, "client.test", "192.0.2.7")])
    assert feed.value("smtpd_connects_total", service="smtpd") == 2
    assert feed.value("smtpd_sessions_total", service="smtpd", tls="Trusted") == 1
    assert feed.value("smtpd_sessions_total", service="smtpd", tls="none") == 1
    assert feed.value("smtpd_sessions_total", service="submission/smtpd", tls="Anonymous") == 1
    labels = {
        "service": "smtpd",
        "trust": "Trusted",
        "protocol": "TLSv1.3",
        "cipher": "TLS_AES_256_GCM_SHA384",
        "secret_bits": "256",
        "algorithm_bits": "256",
    }
    assert feed.value("smtpd_tls_connections_total", **labels) == 1


def test_tls_line_with_sni_still_counts() -> None:
    feed = Feed()
    line = phrases.established_from(ANON, "h", "192.0.2.1", sni="mail.example.test")
    session(feed, SMTPD, 9, [line])
    assert feed.value("smtpd_sessions_total", service="smtpd", tls="Anonymous") == 1


def test_handshake_failure_reason_is_the_library_problem_when_logged() -> None:
    feed = Feed()
    detail = "error:SSL routines::wrong version number"
    session(
        feed,
        SMTPD,
        4,
        [
            "warning: " + phrases.tls_library_problem(detail),
            phrases.handshake_failed("client.test", "192.0.2.7", "-1"),
            fmt.lost_connection("STARTTLS", "client.test", "192.0.2.7"),
        ],
    )
    session(
        feed, SMTPD, 5, [phrases.handshake_failed("client.test", "192.0.2.7", "lost connection")]
    )
    assert feed.value("smtpd_tls_handshake_failures_total", service="smtpd", reason=detail) == 1
    assert (
        feed.value("smtpd_tls_handshake_failures_total", service="smtpd", reason="lost connection")
        == 1
    )
    assert feed.value("smtpd_connections_lost_total", service="smtpd", after_stage="STARTTLS") == 1
    assert feed.value("smtpd_sessions_total", service="smtpd", tls="none") == 2


def test_auth_failures_by_mechanism_and_successes_from_the_disconnect_line() -> None:
    feed = Feed()
    failed = fmt.sasl_failed("client.test", "192.0.2.7", "LOGIN", "authentication failure", "bob")
    client = fmt.client("4F2A1B3C9D", "client.test", "192.0.2.7", ("PLAIN", "alice"))
    session(feed, SUBMISSION, 6, ["warning: " + failed, client], counts="auth=1/2")
    session(feed, SUBMISSION, 7, [], counts="auth=1")  # no mail: the mechanism is unknown
    aborted = fmt.sasl_aborted("client.test", "192.0.2.7", "PLAIN")
    session(feed, SUBMISSION, 8, ["warning: " + aborted], counts="auth=0/1")
    svc = "submission/smtpd"
    assert (
        feed.value("smtpd_sasl_authentication_failures_total", service=svc, mechanism="LOGIN") == 1
    )
    assert (
        feed.value("smtpd_sasl_authentication_failures_total", service=svc, mechanism="PLAIN") == 0
    )
    assert (
        feed.value("smtpd_sasl_authentication_successes_total", service=svc, mechanism="PLAIN") == 1
    )
    assert (
        feed.value("smtpd_sasl_authentication_successes_total", service=svc, mechanism="unknown")
        == 1
    )
    assert feed.value("smtpd_messages_processed_total", service=svc, sasl_method="PLAIN") == 1


def test_rejects_by_stage_and_code() -> None:
    feed = Feed()
    rcpt = fmt.noqueue(
        "reject",
        "RCPT",
        "client.test",
        "192.0.2.7",
        "554 5.7.1 <x@far.test>: Relay access denied",
        sender="a@b.test",
        recipient="x@far.test",
        proto="ESMTP",
        helo="client.test",
    )
    warn = fmt.noqueue(
        "reject_warning",
        "RCPT",
        "client.test",
        "192.0.2.7",
        "554 5.7.1 nope",
        sender="a@b.test",
        recipient="x@far.test",
        proto="ESMTP",
        helo="client.test",
    )
    temp = fmt.noqueue(
        "reject",
        "MAIL",
        "client.test",
        "192.0.2.7",
        "450 4.1.8 <a@b.test>: Sender address rejected: Domain not found",
        sender="a@b.test",
        recipient=None,
        proto="SMTP",
        helo=None,
        queue_id="4F2A1B3C9D",
    )
    session(feed, SMTPD, 10, [rcpt, rcpt, warn, temp])
    assert (
        feed.value("smtpd_messages_rejected_total", service="smtpd", stage="RCPT", code="554") == 2
    )
    assert (
        feed.value("smtpd_messages_rejected_total", service="smtpd", stage="MAIL", code="450") == 1
    )


def status_line(status: str, dsn: str, reason: str, relay: str = "virtual") -> str:
    return fmt.recipient_status(
        "4F2A1B3C9D",
        "user@example.test",
        original="user@example.test",
        relay=relay,
        times=TIMES,
        dsn=dsn,
        status=status,
        reason=reason,
    )


def test_deliveries_and_delay_histogram_by_transport_and_status() -> None:
    feed = Feed()
    feed.info("mailseal/virtual", 20, status_line("sent", "2.0.0", "delivered to maildir"))
    refused = words.connect_failed("mx.b.test", "127.0.0.1", 25, "Connection refused")
    feed.info("mailseal/smtp", 21, status_line("deferred", "4.4.1", refused, "none"))
    feed.info("mailseal/smtp", 21, words.connect_failed("h", "127.0.0.1", 25, "x"))
    feed.info("mailseal/qmgr", 22, status_line("bounced", "5.1.1", "unknown user"))
    with_tls = fmt.recipient_status(
        "4F2A1B3C9D",
        "u@b.test",
        original="",
        relay="mx.b.test[127.0.0.1]:25",
        times=TIMES,
        dsn="2.0.0",
        status="sent",
        reason="250 2.0.0 Ok",
        tls="may",
        conn_use=2,  # a cached session's second use: conn_use= follows relay=
    )
    assert ", conn_use=2, " in with_tls
    feed.info("mailseal/smtp", 23, with_tls)
    assert feed.value("delivery_recipients_total", transport="virtual", status="sent") == 1
    assert feed.value("delivery_recipients_total", transport="smtp", status="deferred") == 1
    assert feed.value("delivery_recipients_total", transport="smtp", status="sent") == 1
    assert feed.value("delivery_recipients_total", transport="qmgr", status="bounced") == 1
    assert feed.value("delivery_delay_seconds_count", transport="virtual", status="sent") == 1
    assert feed.value("delivery_delay_seconds_sum", transport="virtual", status="sent") == 0.25
    bucket = {"transport": "virtual", "status": "sent"}
    assert feed.value("delivery_delay_seconds_bucket", le="0.1", **bucket) == 0
    assert feed.value("delivery_delay_seconds_bucket", le="1.0", **bucket) == 1


def test_qmgr_lines() -> None:
    feed = Feed()
    feed.info("mailseal/qmgr", 1, fmt.qmgr_from("4F2A1B3C9D", "a@b.test", 2048, 3))
    feed.info("mailseal/qmgr", 1, fmt.qmgr_from("4F2A1B3C9E", "", 300, 1))
    feed.info("mailseal/qmgr", 1, fmt.queue_removed("4F2A1B3C9D"))
    feed.info("mailseal/qmgr", 1, fmt.expired("4F2A1B3C9E", "a@b.test"))
    assert feed.value("qmgr_messages_inserted_size_bytes_count") == 2
    assert feed.value("qmgr_messages_inserted_size_bytes_sum") == 2348
    assert feed.value("qmgr_messages_inserted_recipients_bucket", le="2.0") == 1
    assert feed.value("qmgr_messages_removed_total") == 1
    assert feed.value("qmgr_messages_expired_total") == 1


def test_outbound_tls_connections_and_failures() -> None:
    feed = Feed()
    verified = TlsOutcome("TLSv1.3", "TLS_AES_128_GCM_SHA256", 128, 128, PeerTrust.VERIFIED)
    feed.info(
        "mailseal/smtp", 30, client_phrases.established_to(verified, "mx.b.test", "127.0.0.1", 25)
    )
    feed.info(
        "mailseal/smtp",
        31,
        client_phrases.handshake_failed_to("mx.b.test", "127.0.0.1", 25, "lost connection"),
    )
    failure = CertFailure("", "untrusted issuer /O=Evil/CN=Evil CA")
    feed.info(
        "mailseal/smtp", 32, client_phrases.verification_failed("h", "127.0.0.1", 25, failure)
    )
    labels = {
        "trust": "Verified",
        "protocol": "TLSv1.3",
        "cipher": "TLS_AES_128_GCM_SHA256",
        "secret_bits": "128",
        "algorithm_bits": "128",
    }
    assert feed.value("smtp_tls_connections_total", **labels) == 1
    assert feed.value("smtp_tls_handshake_failures_total", reason="lost connection") == 1
    assert feed.value("smtp_tls_verification_failures_total", reason="untrusted issuer") == 1


def test_notices_cleanup_pickup_and_severities() -> None:
    feed = Feed()
    feed.info("mailseal/bounce", 1, "4F2A1B3C9D: sender non-delivery notification: 4F2A1B3CA0")
    feed.info("mailseal/bounce", 2, "4F2A1B3C9D: sender delay notification: 4F2A1B3CA1")
    feed.info("mailseal/cleanup", 3, fmt.message_id("4F2A1B3C9D", "<a@b.test>"))
    feed.info("mailseal/pickup", 4, "4F2A1B3C9F: uid=1000 from=<alice>")
    feed.warning("mailseal/smtpd", 5, "something odd")
    feed.error("mailseal/master", 6, "something bad")
    assert feed.value("bounce_notifications_total", recipient="sender", kind="non-delivery") == 1
    assert feed.value("bounce_notifications_total", recipient="sender", kind="delay") == 1
    assert feed.value("cleanup_messages_processed_total", service="cleanup") == 1
    assert feed.value("pickup_messages_total", service="pickup") == 1
    assert feed.value("log_lines_total", severity="info") == 4
    assert feed.value("log_lines_total", severity="warning") == 1
    assert feed.value("log_lines_total", severity="error") == 1


@pytest.mark.parametrize(
    "message",
    [
        "",
        "disconnect from",
        "4F2A1B3C9D: client=",
        "SSL_accept error from",
        "to=<x>, relay=, delay=abc",
        "warning: TLS library problem: ",
        "NOQUEUE: reject: RCPT from x[1.2.3.4]: 5xx",
    ],
)
def test_odd_lines_never_raise(message: str) -> None:
    feed = Feed()
    for program in ("mailseal/smtpd", "mailseal/smtp", "mailseal/qmgr", "mailseal/virtual"):
        feed.info(program, 1, message)
    assert feed.value("log_lines_total", severity="info") == 4


def test_a_session_without_its_disconnect_does_not_leak_forever() -> None:
    feed = Feed()
    for number in range(60_000):
        feed.info(SMTPD, number, fmt.connect_from("", "192.0.2.1"))
    assert len(feed.metrics._sessions) <= 50_000
