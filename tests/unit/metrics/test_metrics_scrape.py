"""Scrape-time metrics: queue file counts, certificate expiry per service and file, up, build."""

import datetime as dt
from pathlib import Path

import pytest
import trustme
from prometheus_client import CollectorRegistry, generate_latest

from mailseal import __version__
from mailseal.config.loader import LoadedConfig, load_config
from mailseal.daemons.metrics import parse_listen_address
from mailseal.log.metrics_scrape import ScrapeCollector, certificate_expiries

EXPIRY_A = dt.datetime(2031, 5, 17, 12, 0, 0, tzinfo=dt.UTC)
EXPIRY_B = dt.datetime(2029, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def write_cert(path: Path, ca: trustme.CA, not_after: dt.datetime) -> None:
    leaf = ca.issue_cert("mail.example.test", not_after=not_after)
    # Key first, then the chain: the layout of an smtpd_tls_chain_files file.
    path.write_bytes(
        leaf.private_key_pem.bytes() + b"".join(b.bytes() for b in leaf.cert_chain_pems)
    )


def configure(tmp_path: Path, cert: Path, other: Path, extra: str = "") -> LoadedConfig:
    (tmp_path / "main.cf").write_text(
        f"queue_directory = {tmp_path / 'queue'}\nsmtpd_tls_cert_file = {cert}\n"
        f"smtpd_tls_eccert_file = {tmp_path / 'missing.pem'}\n{extra}"
    )
    (tmp_path / "master.cf").write_text(
        "smtp      inet  n       -       n       -       -       smtpd\n"
        "submission inet n       -       n       -       -       smtpd\n"
        f"  -o smtpd_tls_chain_files={other}\n"
        "pickup    unix  n       -       n       60      1       pickup\n"
    )
    return load_config(str(tmp_path), "mail.example.test")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_certificate_expiry_per_service_and_file(tmp_path: Path, ca: trustme.CA) -> None:
    cert, other = tmp_path / "a.pem", tmp_path / "b.pem"
    write_cert(cert, ca, EXPIRY_A)
    write_cert(other, ca, EXPIRY_B)
    found = {
        (c.service, c.file): c.not_after
        for c in certificate_expiries(configure(tmp_path, cert, other))
    }
    # The submission service has both: main.cf's cert file and its own chain file;
    # the missing ECDSA file is left out, and so is the pickup service.
    assert found == {
        ("smtp", str(cert)): EXPIRY_A.timestamp(),
        ("submission", str(cert)): EXPIRY_A.timestamp(),
        ("submission", str(other)): EXPIRY_B.timestamp(),
    }


def test_queue_counts_up_build_info_and_reload(tmp_path: Path, ca: trustme.CA) -> None:
    cert, other = tmp_path / "a.pem", tmp_path / "b.pem"
    write_cert(cert, ca, EXPIRY_A)
    other.write_text("not a certificate")  # unreadable: skipped, not fatal
    queue = tmp_path / "queue"
    for name, files in {"incoming": ["tmp-1", "A1"], "deferred": ["B1", "B2"], "hold": []}.items():
        (queue / name).mkdir(parents=True)
        for file in files:
            (queue / name / file).write_text("x")
    collector = ScrapeCollector(configure(tmp_path, cert, other))
    registry = CollectorRegistry()
    registry.register(collector)
    assert sample(registry, "mailseal_queue_messages", queue="incoming") == 1  # tmp- is not one
    assert sample(registry, "mailseal_queue_messages", queue="deferred") == 2
    assert sample(registry, "mailseal_queue_messages", queue="hold") == 0
    assert sample(registry, "mailseal_queue_messages", queue="active") is None  # no directory
    assert sample(registry, "mailseal_up") == 1
    assert sample(registry, "mailseal_build_info", version=__version__) == 1
    expiry = "mailseal_tls_certificate_expiry_timestamp_seconds"
    assert sample(registry, expiry, service="smtp", file=str(cert)) == EXPIRY_A.timestamp()
    assert sample(registry, expiry, service="submission", file=str(other)) is None

    write_cert(cert, ca, EXPIRY_B)  # a renewed certificate, then a reload
    collector.update(configure(tmp_path, cert, other))
    assert sample(registry, expiry, service="smtp", file=str(cert)) == EXPIRY_B.timestamp()
    text = generate_latest(registry).decode()
    assert "# TYPE mailseal_queue_messages gauge" in text


@pytest.mark.parametrize(
    ("text", "host", "port", "loopback"),
    [
        ("127.0.0.1:9154", "127.0.0.1", 9154, True),
        ("[::1]:9154", "::1", 9154, True),
        ("localhost:80", "localhost", 80, True),
        ("0.0.0.0:9154", "0.0.0.0", 9154, False),
        ("metrics.example.test:9154", "metrics.example.test", 9154, False),
    ],
)
def test_listen_addresses(text: str, host: str, port: int, loopback: bool) -> None:
    address = parse_listen_address(text)
    assert (address.host, address.port, address.is_loopback) == (host, port, loopback)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("9154", "expected host:port"),
        (":9154", "expected host:port"),
        ("127.0.0.1:", "bad port ''"),
        ("127.0.0.1:http", "bad port 'http'"),
        ("127.0.0.1:70000", "bad port '70000'"),
        ("::1:9154", "an IPv6 address needs brackets: [addr]:port"),
    ],
)
def test_bad_listen_addresses(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=r"^" + why.replace("[", r"\[").replace("]", r"\]") + "$"):
        parse_listen_address(text)
