"""The metrics companion of the master: Prometheus's ``GET /metrics`` on ``metrics_listen_address``.

A small HTTP/1.1 responder on the master's event loop (so :meth:`stop` is a
clean close, unlike prometheus_client's server thread), serving a private
:class:`CollectorRegistry` in the Prometheus text format:

- the log-derived counters of :mod:`mailseal.log.metrics`, fed by a
  :class:`~mailseal.log.sinks.MailLog` observer from the moment the companion
  starts (counters start at zero with each master process, as Prometheus expects);
- the scrape-time gauges of :mod:`mailseal.log.metrics_scrape`: queue sizes,
  certificate expiry (re-read at each reload), ``mailseal_up`` and build info.

Any other path is ``404``, any other method ``405``; every response closes the
connection. The listener is meant for loopback: another address works but is
logged as a warning, since the metrics name clients and ciphers. A malformed
address stops the start with ``cannot start: metrics_listen_address = ...``.

Reads: metrics_listen_address (empty: no listener), queue_directory and the smtpd
services' certificate files.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, generate_latest

from mailseal.log.metrics import LogMetrics
from mailseal.log.metrics_scrape import ScrapeCollector

if TYPE_CHECKING:
    from mailseal.config.loader import LoadedConfig
    from mailseal.daemons.companions import Companion, MasterContext

__all__ = ["ListenAddress", "MetricsCompanion", "companion", "parse_listen_address"]

_REQUEST_LIMIT = 8192  # request line and headers; a scraper sends a few hundred bytes
_REQUEST_TIMEOUT = 10.0
_STOP_TIMEOUT = 2.0


@dataclass(frozen=True)
class ListenAddress:
    host: str
    port: int

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False  # a host name: whatever it resolves to may be reachable


def parse_listen_address(text: str) -> ListenAddress:
    """``127.0.0.1:9154``, ``[::1]:9154`` or ``localhost:9154``; ValueError says what is wrong."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host:
        raise ValueError("expected host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError("an IPv6 address needs brackets: [addr]:port")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad port {port!r}")
    return ListenAddress(host, int(port))


def companion(context: MasterContext) -> Companion | None:
    """The metrics listener, unless ``metrics_listen_address`` is empty."""
    if not context.config.base.metrics_listen_address.strip():
        return None
    return MetricsCompanion(context)


class MetricsCompanion:
    """Serves ``/metrics``; see the module docstring."""

    observes_log = True

    def __init__(self, context: MasterContext) -> None:
        self._context = context
        self._program = context.log.program("master")
        self._configured = context.config.base.metrics_listen_address
        self.registry = CollectorRegistry()
        self.log_metrics = LogMetrics(self.registry)
        self._scrape = ScrapeCollector(context.config)
        self.registry.register(self._scrape)
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        log = self._context.log
        try:
            address = parse_listen_address(self._configured)
            self._server = await asyncio.start_server(
                self._serve, address.host, address.port, limit=_REQUEST_LIMIT
            )
        except (ValueError, OSError) as error:
            why = error.strerror if isinstance(error, OSError) and error.strerror else error
            text = f"metrics_listen_address = {self._configured}: {why}"
            log.error(self._program, self._context.number, text)  # noqa: TRY400
            # OSError is what the CLI reports as "cannot start: ..." (not a traceback).
            raise OSError(text) from error
        if not address.is_loopback:
            log.warning(
                self._program,
                self._context.number,
                f"metrics_listen_address = {self._configured} is not a loopback address: "
                "anyone who can reach it reads the metrics",
            )
        log.add_observer(self.log_metrics.observe)

    def reload(self, config: LoadedConfig) -> None:
        self._scrape.update(config)
        if config.base.metrics_listen_address != self._configured:
            self._context.log.warning(
                self._program,
                self._context.number,
                "metrics_listen_address changed: stop and start the mail system to use it",
            )

    async def stop(self) -> None:
        self._context.log.remove_observer(self.log_metrics.observe)
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for writer in list(self._clients):
            writer.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), _STOP_TIMEOUT)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _REQUEST_TIMEOUT)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                return
            await self._answer(writer, head)
        except ConnectionError:
            return
        finally:
            self._clients.discard(writer)
            writer.close()

    async def _answer(self, writer: asyncio.StreamWriter, head: bytes) -> None:
        method, _, rest = head.split(b"\r\n", 1)[0].decode("latin-1").partition(" ")
        path = rest.split(" ", 1)[0].split("?", 1)[0]
        if path != "/metrics":
            await self._respond(writer, 404, "Not Found", b"Not Found\n")
        elif method not in ("GET", "HEAD"):
            await self._respond(writer, 405, "Method Not Allowed", b"", allow="GET, HEAD")
        else:
            # Counting queue files may take a while on a big queue: not on the loop. The
            # classic text format (0.0.4) is what every Prometheus version reads, and what
            # prometheus_client itself answers a scraper that does not negotiate.
            loop = asyncio.get_running_loop()
            body = await loop.run_in_executor(None, generate_latest, self.registry)
            await self._respond(
                writer,
                200,
                "OK",
                body,
                content_type=CONTENT_TYPE_PLAIN_0_0_4,
                head=method == "HEAD",
            )

    @staticmethod
    async def _respond(
        writer: asyncio.StreamWriter,
        status: int,
        reason: str,
        body: bytes,
        *,
        content_type: str = "text/plain; charset=utf-8",
        allow: str = "",
        head: bool = False,
    ) -> None:
        headers = [
            f"HTTP/1.1 {status} {reason}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
            "Connection: close",
        ]
        if allow:
            headers.append(f"Allow: {allow}")
        writer.write(("\r\n".join(headers) + "\r\n\r\n").encode("latin-1"))
        if not head:
            writer.write(body)
        await writer.drain()
