"""The loopback DNS stub itself: answers over UDP and TCP, directives, start and stop."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Iterator

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from mailseal.testing.dns_stub import DnsStub, Query

ZONES = (
    """
$TTL 60
example.test.      IN MX 10 mx1.example.test.
mx1.example.test.  IN A 127.0.0.2
www.example.test.  IN CNAME mx1.example.test.
"""
    + "".join(f"wide.test. IN A 127.0.9.{i}\n" for i in range(1, 51))
    + """
;; SERVFAIL broken.test.
;; REFUSED refused.test.
;; TIMEOUT slow.test.
;; TRUNCATE tc.test.
;; SECURE example.test.
tc.test.           IN A 127.0.0.3
"""
)


@pytest.fixture(scope="module")
def stub() -> Iterator[DnsStub]:
    with DnsStub.from_text(ZONES) as server:
        yield server


def udp(stub: DnsStub, name: str, rdtype: str = "A", **query: object) -> dns.message.Message:
    host, port = stub.address
    message = dns.message.make_query(name, rdtype, **query)  # type: ignore[arg-type]
    return dns.query.udp(message, host, port=port, timeout=2, ignore_trailing=True)


def test_tcp_queries_are_answered(stub: DnsStub) -> None:
    host, port = stub.address
    query = dns.message.make_query("example.test.", "MX")
    response = asyncio.run(dns.asyncquery.tcp(query, host, port=port, timeout=2))
    [rrset] = response.answer
    assert [rd.exchange.to_text() for rd in rrset] == ["mx1.example.test."]
    assert Query("example.test", "MX", "tcp") in stub.queries


def test_several_queries_on_one_tcp_connection(stub: DnsStub) -> None:
    with socket.create_connection(stub.address, timeout=2) as conn:
        for name in ("mx1.example.test.", "MX1.Example.TEST."):
            wire = dns.message.make_query(name, "A").to_wire()
            conn.sendall(struct.pack("!H", len(wire)) + wire)
            (length,) = struct.unpack("!H", conn.recv(2))
            data = b""
            while len(data) < length:
                data += conn.recv(length - len(data))
            response = dns.message.from_wire(data)
            assert [rd.address for rd in response.answer[0]] == ["127.0.0.2"]


def test_nxdomain_nodata_and_empty_non_terminals(stub: DnsStub) -> None:
    assert udp(stub, "nothing.example.test.").rcode() == dns.rcode.NXDOMAIN
    nodata = udp(stub, "mx1.example.test.", "AAAA")
    assert (nodata.rcode(), nodata.answer) == (dns.rcode.NOERROR, [])
    assert udp(stub, "test.").rcode() == dns.rcode.NOERROR  # has names below it
    assert udp(stub, "mx1.example.test.").flags & dns.flags.AA


def test_cname_is_followed_within_the_zone_data(stub: DnsStub) -> None:
    response = udp(stub, "www.example.test.")
    types = [rrset.rdtype for rrset in response.answer]
    assert types == [dns.rdatatype.CNAME, dns.rdatatype.A]


def test_rcode_directives_cover_the_name_and_below(stub: DnsStub) -> None:
    assert udp(stub, "broken.test.", "MX").rcode() == dns.rcode.SERVFAIL
    assert udp(stub, "a.b.broken.test.").rcode() == dns.rcode.SERVFAIL
    assert udp(stub, "refused.test.").rcode() == dns.rcode.REFUSED


def test_timeout_directive_never_answers(stub: DnsStub) -> None:
    with pytest.raises(dns.exception.Timeout):
        host, port = stub.address
        dns.query.udp(dns.message.make_query("slow.test.", "A"), host, port=port, timeout=0.3)


def test_truncation_forced_or_by_size_and_tcp_gets_it_all(stub: DnsStub) -> None:
    forced = udp(stub, "tc.test.")
    assert forced.flags & dns.flags.TC
    assert forced.answer == []
    too_big = udp(stub, "wide.test.")  # 50 A records do not fit 512 bytes
    assert too_big.flags & dns.flags.TC
    with_edns = udp(stub, "wide.test.", use_edns=0, payload=4096)
    assert not with_edns.flags & dns.flags.TC
    assert len(with_edns.answer[0]) == 50
    host, port = stub.address
    full = dns.query.tcp(dns.message.make_query("tc.test.", "A"), host, port=port, timeout=2)
    assert [rd.address for rd in full.answer[0]] == ["127.0.0.3"]


def test_secure_directive_sets_the_ad_bit(stub: DnsStub) -> None:
    assert udp(stub, "mx1.example.test.").flags & dns.flags.AD
    assert not udp(stub, "wide.test.", use_edns=0, payload=4096).flags & dns.flags.AD


def test_unknown_directive_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown DNS stub directive"):
        DnsStub.from_text(";; EXPLODE x.test.\n")


def test_stop_closes_the_port_and_the_address_goes_away() -> None:
    stub = DnsStub.from_text("a.test. 60 IN A 127.0.0.1\n")
    stub.start()
    address = stub.address
    with pytest.raises(RuntimeError, match="already running"):
        stub.start()
    idle = socket.create_connection(address, timeout=2)  # an open TCP client must not block stop
    started = time.monotonic()
    stub.stop()
    assert time.monotonic() - started < 3
    idle.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=2).close()
    with pytest.raises(RuntimeError, match="not running"):
        _ = stub.address
    stub.stop()  # a second stop is harmless
