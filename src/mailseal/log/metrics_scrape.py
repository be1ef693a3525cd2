"""Metrics read at scrape time: queue sizes, certificate expiry, ``up`` and build info.

What postfix_exporter asks showq(8) for, we count on disk: the files in each
queue directory of ``queue_directory`` (``incoming``, ``active``, ``deferred``,
``hold``, ``corrupt``, ``maildrop``; a missing directory is skipped). The
certificates are those the smtpd services serve (``smtpd_tls_cert_file``,
``smtpd_tls_eccert_file``, ``smtpd_tls_chain_files`` of each master.cf smtpd
service): the first certificate of each file is the server's own, and its
``notAfter`` is exported as a Unix time. Certificates are read when the
configuration is (start and reload), not at each scrape; an unreadable file is
left out, never fatal.

Reads: queue_directory, smtpd_tls_cert_file, smtpd_tls_eccert_file,
smtpd_tls_chain_files.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from mailseal import __version__
from mailseal.config.loader import LoadedConfig

__all__ = ["QUEUE_NAMES", "CertificateExpiry", "ScrapeCollector", "certificate_expiries"]

QUEUE_NAMES = ("incoming", "active", "deferred", "hold", "corrupt", "maildrop")
# queue/store.py writes under "tmp-" names first; no queue file starts with a dot.
_SKIP = ("tmp-", ".")


@dataclass(frozen=True)
class CertificateExpiry:
    """One certificate file of one smtpd service, and when its certificate expires."""

    service: str  # the master.cf service name (``smtp``, ``submission``, ``2525``...)
    file: str
    not_after: float  # Unix time


def _not_after(path: str) -> float | None:
    """The first certificate's notAfter, or None when the file cannot be read as PEM."""
    # Imported at the first scrape, not with the module: the master imports this module
    # whatever metrics_listen_address says, and the X.509 parser costs it about 10 MB.
    from cryptography import x509

    try:
        data = Path(path).read_bytes()
        certificates = x509.load_pem_x509_certificates(data)
    except (OSError, ValueError):
        return None
    return certificates[0].not_valid_after_utc.timestamp() if certificates else None


def certificate_expiries(config: LoadedConfig) -> tuple[CertificateExpiry, ...]:
    """Every certificate file the smtpd services use, once per (service, file)."""
    found: dict[tuple[str, str], CertificateExpiry] = {}
    for service, service_config in config.smtpd_services():
        files = (
            service_config.smtpd_tls_cert_file,
            service_config.smtpd_tls_eccert_file,
            *service_config.smtpd_tls_chain_files,
        )
        for file in files:
            if not file or (service.name, file) in found:
                continue
            not_after = _not_after(file)
            if not_after is not None:
                found[service.name, file] = CertificateExpiry(service.name, file, not_after)
    return tuple(found.values())


def _count_files(directory: Path) -> int | None:
    """Queue files in ``directory``; a file being written (``tmp-``, dot files) is not one."""
    try:
        with os.scandir(directory) as entries:
            return sum(
                1
                for entry in entries
                if entry.is_file(follow_symlinks=False) and not entry.name.startswith(_SKIP)
            )
    except OSError:
        return None


class ScrapeCollector:
    """A prometheus_client collector; :meth:`update` after a reload."""

    def __init__(self, config: LoadedConfig) -> None:
        self._queue_directory = Path(config.base.queue_directory)
        self._certificates = certificate_expiries(config)

    def update(self, config: LoadedConfig) -> None:
        """A reload: a new queue directory and fresh certificate files."""
        # One assignment each: a scrape in another thread sees the old or the new value.
        self._certificates = certificate_expiries(config)
        self._queue_directory = Path(config.base.queue_directory)

    def collect(self) -> Iterable[Metric]:
        yield from self._queues()
        certificates = GaugeMetricFamily(
            "mailseal_tls_certificate_expiry_timestamp_seconds",
            "notAfter of the server certificate of each smtpd certificate file (Unix time).",
            labels=("service", "file"),
        )
        for cert in self._certificates:
            certificates.add_metric((cert.service, cert.file), cert.not_after)
        yield certificates
        yield GaugeMetricFamily("mailseal_up", "The mail system is running.", value=1.0)
        build = GaugeMetricFamily("mailseal_build_info", "mailseal's version.", labels=("version",))
        build.add_metric((__version__,), 1.0)
        yield build

    def _queues(self) -> Iterator[Metric]:
        queues = GaugeMetricFamily(
            "mailseal_queue_messages", "Files in each queue directory.", labels=("queue",)
        )
        for name in QUEUE_NAMES:
            directory = self._queue_directory / name
            count = _count_files(directory)
            if count is not None:
                queues.add_metric((name,), float(count))
        yield queues
