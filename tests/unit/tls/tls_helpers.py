"""Real TLS without sockets: configs, certificates on disk and in-memory handshakes.

A handshake here is two ``ssl.SSLObject``s over ``MemoryBIO`` pairs, pumped until
both sides finish or one side fails; that is the full OpenSSL state machine,
only the transport is a byte copy.
"""

from __future__ import annotations

import contextlib
import ssl
import warnings
from pathlib import Path

import trustme

from mailseal.config.errors import Setting
from mailseal.config.facts import SystemFacts
from mailseal.config.model import Config

FACTS = SystemFacts(hostname="mail.example.com", config_directory="/etc/mailseal")

# The TLS lines of the seed configuration that must work unchanged.
SEED_TLS = {
    "smtpd_tls_protocols": "!SSLv2, !SSLv3, !TLSv1",
    "smtpd_tls_mandatory_protocols": "!SSLv2, !SSLv3, !TLSv1, !TLSv1.1",
    "smtpd_tls_ciphers": "high",
    "smtpd_tls_mandatory_ciphers": "high",
    "smtpd_tls_mandatory_exclude_ciphers": "MD5, DES, ADH, RC4, PSD, SRP, 3DES, eNULL, aNULL",
    "tls_random_source": "dev:/dev/urandom",
    "smtpd_tls_session_cache_database": "btree:${data_directory}/smtpd_scache",
    "smtpd_tls_security_level": "may",
}

# OpenSSL 3 refuses TLS 1.0/1.1 at security level 1 and above; lists that let the
# protocol settings, not the security level, decide.
LEGACY_OK = "aNULL:-aNULL:HIGH:MEDIUM:@SECLEVEL=0:@STRENGTH"


def make_config(**settings: str) -> Config:
    return Config({name: Setting(value) for name, value in settings.items()}, FACTS)


def write_leaf(directory: Path, name: str, leaf: trustme.LeafCert, *, key_inside: bool) -> Path:
    """Write the leaf's chain (and, with ``key_inside``, its key after it) to NAME.pem."""
    path = directory / f"{name}.pem"
    chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    key = leaf.private_key_pem.bytes()
    path.write_bytes(chain + key if key_inside else chain)
    if not key_inside:
        (directory / f"{name}.key").write_bytes(key)
    return path


def client_context(
    ca: trustme.CA | None = None,
    *,
    minimum: ssl.TLSVersion | None = None,
    maximum: ssl.TLSVersion | None = None,
    ciphers: str | None = None,
    cert: trustme.LeafCert | None = None,
) -> ssl.SSLContext:
    """A client like an MTA's: verifies against ``ca`` if given, else not at all."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        ca.configure_trust(context)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if minimum is not None:
            context.minimum_version = minimum
        if maximum is not None:
            context.maximum_version = maximum
    if ciphers is not None:
        context.set_ciphers(ciphers)
    if cert is not None:
        cert.configure_cert(context)
    return context


def handshake(
    client: ssl.SSLContext,
    server: ssl.SSLContext,
    *,
    session: ssl.SSLSession | None = None,
    hostname: str | None = "mail.example.com",
) -> tuple[ssl.SSLObject, ssl.SSLObject]:
    """Run a full handshake in memory; raise the first side's ``ssl.SSLError``.

    ``hostname`` is the SNI the client sends (None: none).
    """
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client_side = client.wrap_bio(c_in, c_out, server_hostname=hostname, session=session)
    server_side = server.wrap_bio(s_in, s_out, server_side=True)
    pending = [client_side, server_side]
    for _ in range(100):
        for side in list(pending):
            try:
                side.do_handshake()
                pending.remove(side)
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if not pending and not c_in.pending and not s_in.pending:
            break
    assert not pending, "handshake did not finish"
    # TLS 1.3 tickets and a late client-certificate verdict arrive after the
    # handshake: let both sides read them (raises if the server refused).
    for side in (server_side, client_side):
        with contextlib.suppress(ssl.SSLWantReadError):
            side.read(1)
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    return client_side, server_side
