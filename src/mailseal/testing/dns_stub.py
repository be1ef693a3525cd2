"""A small authoritative DNS server on loopback for tests, answering from zone text.

``DnsStub.from_text(zones)`` takes zone-file syntax (``dns.zone.from_text``
with the root as origin, so write absolute names; ``$TTL`` and ``$ORIGIN``
work) and serves it over UDP **and** TCP on one free port of ``127.0.0.1``,
from an asyncio loop in a background thread::

    with DnsStub.from_text('''
    example.test.     60 IN MX 10 mx1.example.test.
    mx1.example.test. 60 IN A  127.0.0.2
    ;; SERVFAIL broken.test.
    ''') as stub:
        resolver = Resolver([stub.address])

Answers: the records of the asked type (names match case-insensitively); a
CNAME is followed inside the zone data, as an authoritative server does; a name
with no data at all, not even below it, is NXDOMAIN; a name that exists
without the asked type is NOERROR with an empty answer (NODATA). Wildcards,
delegations and DNSSEC records are not interpreted.

Directives are comment lines ``;; VERB name``, applying to the name and every
name below it (the zone parser skips them as comments):

- ``;; TIMEOUT name`` - never answer (UDP nor TCP);
- ``;; SERVFAIL name`` (or any other rcode mnemonic: ``REFUSED``, ``FORMERR``,
  ``NXDOMAIN``...) - answer with that rcode and nothing else;
- ``;; TRUNCATE name`` - answer over UDP with TC set and no records, so a
  client must retry over TCP, where the full answer comes;
- ``;; SECURE name`` - set the AD bit, as a validating resolver would (DANE).

Records go out in zone-file order (no round-robin shuffling), so tests
repeat. Over UDP an answer larger than the client's limit (512 bytes, or its EDNS
payload size) is sent truncated, without records and with TC set.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import struct
import threading
from dataclasses import dataclass
from enum import Enum
from types import TracebackType
from typing import cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

__all__ = ["DnsStub", "Query", "StubZones"]

_HOST = "127.0.0.1"
_DIRECTIVE = re.compile(r"^\s*;;\s*(?P<verb>[A-Za-z]+)\s+(?P<name>\S+)\s*$")
_CNAME_LIMIT = 8  # longer chains are answered as far as this, like a loop guard
_TCP_IDLE = 10.0  # seconds a TCP client may stay silent before we close


class _Verb(Enum):
    TIMEOUT = "TIMEOUT"
    TRUNCATE = "TRUNCATE"
    SECURE = "SECURE"
    RCODE = "RCODE"


@dataclass(frozen=True)
class _Rule:
    verb: _Verb
    name: dns.name.Name
    rcode: dns.rcode.Rcode = dns.rcode.NOERROR


@dataclass(frozen=True)
class Query:
    """One question the stub received (for tests that check what was asked)."""

    name: str  # as asked, without the trailing dot
    rdtype: str  # "MX", "A", ...
    transport: str  # "udp" or "tcp"


def _parse_rule(verb: str, name: str) -> _Rule:
    owner = dns.name.from_text(name)
    upper = verb.upper()
    if upper in _Verb.__members__ and upper != "RCODE":
        return _Rule(_Verb(upper), owner)
    try:
        rcode = dns.rcode.from_text(upper)
    except dns.rcode.UnknownRcode:
        raise ValueError(f"unknown DNS stub directive: ;; {verb} {name}") from None
    return _Rule(_Verb.RCODE, owner, rcode)


class StubZones:
    """The data and the rules: turns one query into one response (or silence)."""

    def __init__(self, text: str) -> None:
        self._zone = dns.zone.from_text(
            text, origin=dns.name.root, relativize=False, check_origin=False
        )
        self._rules = tuple(
            _parse_rule(match["verb"], match["name"])
            for match in map(_DIRECTIVE.match, text.splitlines())
            if match
        )
        # Every owner name and its ancestors exist (RFC 8020: no NXDOMAIN for
        # empty non-terminals such as "test." when "example.test." has data).
        self._existing: set[dns.name.Name] = set()
        for owner in self._zone.nodes:
            name = dns.name.Name(owner.labels)
            while name != dns.name.root:
                self._existing.add(name)
                name = name.parent()

    def respond(self, query: dns.message.Message) -> tuple[dns.message.Message | None, bool]:
        """The response (``None``: stay silent) and whether UDP must truncate it."""
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response, False
        question = query.question[0]
        rules = [rule for rule in self._rules if question.name.is_subdomain(rule.name)]
        verbs = {rule.verb for rule in rules}
        if _Verb.TIMEOUT in verbs:
            return None, False
        rcodes = [rule for rule in rules if rule.verb is _Verb.RCODE]
        if rcodes:
            # The most specific directive decides.
            response.set_rcode(max(rcodes, key=lambda rule: len(rule.name)).rcode)
            return response, False
        self._answer(response, question.name, question.rdtype)
        if _Verb.SECURE in verbs:
            response.flags |= dns.flags.AD
        return response, _Verb.TRUNCATE in verbs

    def _answer(
        self, response: dns.message.Message, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType
    ) -> None:
        name = qname
        for _ in range(_CNAME_LIMIT):
            node = self._zone.get_node(name)
            if node is None:
                if name not in self._existing:
                    response.set_rcode(dns.rcode.NXDOMAIN)
                return
            rdataset = node.get_rdataset(dns.rdataclass.IN, rdtype)
            if rdataset is not None:
                response.answer.append(
                    dns.rrset.from_rdata_list(name, rdataset.ttl, list(rdataset))
                )
                return
            cname = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.CNAME)
            if cname is None:
                return  # NODATA
            response.answer.append(dns.rrset.from_rdata_list(name, cname.ttl, list(cname)))
            name = cname[0].target


def _udp_wire(query: dns.message.Message, response: dns.message.Message, truncate: bool) -> bytes:
    limit = max(512, query.payload) if query.edns >= 0 else 512
    if not truncate:
        try:
            return response.to_wire(max_size=limit, want_shuffle=False)
        except dns.exception.TooBig:
            pass
    short = dns.message.make_response(query)
    short.flags |= dns.flags.TC | (response.flags & dns.flags.AA)
    short.set_rcode(response.rcode())
    return short.to_wire(max_size=limit)


def _bind_pair() -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket bound to the same free loopback port."""
    for _ in range(50):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind((_HOST, 0))
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            tcp.bind((_HOST, udp.getsockname()[1]))
        except OSError:
            # Someone holds that TCP port: try another.
            udp.close()
            tcp.close()
            continue
        tcp.listen(16)
        udp.setblocking(False)
        tcp.setblocking(False)
        return udp, tcp
    raise OSError("no loopback port free for both UDP and TCP")


class _UdpServer(asyncio.DatagramProtocol):
    def __init__(self, stub: DnsStub) -> None:
        self._stub = stub
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A datagram endpoint's transport, whatever its concrete class says.
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        try:
            query = dns.message.from_wire(data)
        except dns.exception.DNSException:
            return  # not DNS: a real server would drop it too
        response, truncate = self._stub.handle(query, "udp")
        if response is not None and self._transport is not None:
            self._transport.sendto(_udp_wire(query, response, truncate), addr)


class DnsStub:
    """The server: ``start()``/``stop()`` or ``with``; ``address`` is ``(host, port)``."""

    def __init__(self, zones: StubZones) -> None:
        self.zones = zones
        self._lock = threading.Lock()
        self._queries: list[Query] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._address: tuple[str, int] | None = None

    @classmethod
    def from_text(cls, zones: str) -> DnsStub:
        """A stub (not yet started) serving ``zones``; see the module doc for the syntax."""
        return cls(StubZones(zones))

    @property
    def address(self) -> tuple[str, int]:
        """Where the stub listens, for UDP and TCP alike."""
        if self._address is None:
            raise RuntimeError("the DNS stub is not running")
        return self._address

    @property
    def queries(self) -> tuple[Query, ...]:
        """Every question received so far, in order."""
        with self._lock:
            return tuple(self._queries)

    def handle(
        self, query: dns.message.Message, transport: str
    ) -> tuple[dns.message.Message | None, bool]:
        """Log the question and answer it (called on the server thread)."""
        if query.question:
            question = query.question[0]
            asked = Query(
                question.name.to_text(omit_final_dot=True),
                dns.rdatatype.to_text(question.rdtype),
                transport,
            )
            with self._lock:
                self._queries.append(asked)
        return self.zones.respond(query)

    def start(self, timeout: float = 5.0) -> None:
        """Bind and serve in a background thread; returns once the port is open."""
        if self._thread is not None:
            raise RuntimeError("the DNS stub is already running")
        self._thread = threading.Thread(target=self._run, name="dns-stub", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the DNS stub did not start in time")
        if self._error is not None:
            self._thread.join(timeout)
            self._thread = None
            raise RuntimeError("the DNS stub could not start") from self._error

    def stop(self, timeout: float = 5.0) -> None:
        """Close the sockets and join the thread (waiting at most ``timeout`` seconds)."""
        thread, loop, stopping = self._thread, self._loop, self._stopping
        if thread is None:
            return
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop may have ended already
                loop.call_soon_threadsafe(stopping.set)
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError("the DNS stub thread did not stop in time")
        self._thread = self._loop = self._stopping = None
        self._address = None
        self._ready.clear()

    def __enter__(self) -> DnsStub:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:
            self._error = error
            self._ready.set()

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        udp_sock, tcp_sock = _bind_pair()
        transport, _ = await loop.create_datagram_endpoint(lambda: _UdpServer(self), sock=udp_sock)
        # Our own accept callback, not asyncio.start_server: a connection taken
        # while that server closes leaks its socket (Python 3.11). Here every
        # accepted socket is recorded in the same step that accepts it.
        connections: dict[asyncio.Task[None], socket.socket] = {}
        loop.add_reader(tcp_sock, self._accept, tcp_sock, connections)
        self._loop, self._stopping = loop, asyncio.Event()
        self._address = (_HOST, int(udp_sock.getsockname()[1]))
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            transport.close()
            loop.remove_reader(tcp_sock)
            tcp_sock.close()
            open_connections = dict(connections)
            for task in open_connections:
                task.cancel()
            await asyncio.gather(*open_connections, return_exceptions=True)
            for conn in open_connections.values():
                conn.close()  # a task cancelled before it ran never closed its socket

    def _accept(
        self, listener: socket.socket, connections: dict[asyncio.Task[None], socket.socket]
    ) -> None:
        try:
            conn, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return  # another wake-up took it
        conn.setblocking(False)
        task = asyncio.get_running_loop().create_task(self._connection(conn))
        connections[task] = conn
        task.add_done_callback(lambda done: connections.pop(done, None))

    async def _connection(self, conn: socket.socket) -> None:
        reader, writer = await asyncio.open_connection(sock=conn)
        try:
            await self._serve_tcp(reader, writer)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """RFC 1035 section 4.2.2 / RFC 7766: length-prefixed messages, several per connection."""
        try:
            while True:
                header = await asyncio.wait_for(reader.readexactly(2), _TCP_IDLE)
                (length,) = struct.unpack("!H", header)
                data = await asyncio.wait_for(reader.readexactly(length), _TCP_IDLE)
                query = dns.message.from_wire(data)
                response, _ = self.handle(query, "tcp")
                if response is None:
                    continue  # TIMEOUT: stay silent, as over UDP
                wire = response.to_wire(want_shuffle=False)
                writer.write(struct.pack("!H", len(wire)) + wire)
                await writer.drain()
        except (
            asyncio.IncompleteReadError,
            TimeoutError,
            ConnectionError,
            dns.exception.DNSException,
        ):
            return  # the client left, idled, or sent garbage: drop the connection
