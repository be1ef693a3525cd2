"""Shared session-ticket keys (tls/tickets.py): a ticket of one context resumes in another."""

from __future__ import annotations

import socket
import ssl
import threading

import trustme

from mailseal.tls.tickets import TICKET_KEYS_LENGTH, new_ticket_keys, share_ticket_keys


def _server(cert: trustme.LeafCert) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    return context


def _handshake(
    server: ssl.SSLContext, client: ssl.SSLContext, session: ssl.SSLSession | None = None
) -> tuple[ssl.SSLSession | None, bool]:
    near, far = socket.socketpair()

    def serve() -> None:
        with server.wrap_socket(near, server_side=True) as tls:
            tls.sendall(b"x")
            tls.recv(1)

    thread = threading.Thread(target=serve)
    thread.start()
    with client.wrap_socket(far, server_hostname="mail.example.test", session=session) as tls:
        tls.recv(1)  # after data, the TLS 1.3 ticket has arrived
        tls.sendall(b"y")
        result = (tls.session, bool(tls.session_reused))
    thread.join(10)
    return result


def test_a_ticket_from_one_context_resumes_in_another_with_the_same_keys() -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("mail.example.test")
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(client)
    keys = new_ticket_keys()
    first, second, stranger = _server(cert), _server(cert), _server(cert)
    assert share_ticket_keys(first, keys) is None
    assert share_ticket_keys(second, keys) is None
    session, reused = _handshake(first, client)
    assert not reused
    assert _handshake(second, client, session)[1] is True
    assert _handshake(stranger, client, session)[1] is False  # its own keys: full handshake


def test_keys_of_the_wrong_length_are_refused_and_change_nothing() -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    assert share_ticket_keys(context, b"short") == f"ticket keys must be {TICKET_KEYS_LENGTH} bytes"
    assert len(new_ticket_keys()) == TICKET_KEYS_LENGTH
    assert new_ticket_keys() != new_ticket_keys()
