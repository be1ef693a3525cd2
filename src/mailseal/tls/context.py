"""The ``ssl``-facing helpers shared by the server and client context builders.

* ``protocol_bounds``: a Postfix protocol list as OpenSSL's minimum/maximum
  versions (the pure choice of window is in ``mailseal.tls.ciphers``).
* ``install_chain``: load one key with its chain into a context. ``ssl`` reads
  chains only from files, and a chain file may hold several keys, so each
  ``KeyChain``'s PEM is handed over through an anonymous in-memory file
  (``memfd_create``), so that no private key is ever copied to disk; where
  memfd is missing, a private temporary directory is used.
* ``ssl_option_bits``: ``tls_ssl_options`` (OpenSSL option names or numbers).
  Names are the ``OP_*`` constants Python's ``ssl`` exposes; anything else is
  reported so the caller can warn, as Postfix warns about unknown names.

``ssl`` is imported only in ``mailseal.tls`` and ``mailseal.net`` (import contract).
"""

from __future__ import annotations

import os
import ssl
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from mailseal.tls.ciphers import protocol_window

if TYPE_CHECKING:
    from mailseal.config.kinds import TlsProtocolRange
    from mailseal.tls.chains import KeyChain

__all__ = [
    "TLS_VERSION_BY_NAME",
    "install_chain",
    "protocol_bounds",
    "set_protocols",
    "ssl_option_bits",
]

TLS_VERSION_BY_NAME: dict[str, ssl.TLSVersion] = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


def protocol_bounds(allowed: TlsProtocolRange) -> tuple[ssl.TLSVersion, ssl.TLSVersion]:
    """OpenSSL's (minimum, maximum) for a Postfix protocol list; see ``protocol_window``."""
    window = protocol_window(allowed)
    return TLS_VERSION_BY_NAME[window.lowest], TLS_VERSION_BY_NAME[window.highest]


def set_protocols(context: ssl.SSLContext, allowed: TlsProtocolRange) -> None:
    """Apply a protocol list's bounds to ``context``."""
    minimum, maximum = protocol_bounds(allowed)
    with warnings.catch_warnings():
        # Python deprecates naming TLSv1/TLSv1.1; the admin asked for them explicitly.
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = minimum
        context.maximum_version = maximum


def install_chain(context: ssl.SSLContext, chain: KeyChain) -> None:
    """Load ``chain`` (key + certificates) into ``context``; raises ``ssl.SSLError``/``OSError``.

    OpenSSL keeps one key and chain per key type, so loading an RSA and then an
    ECDSA chain leaves both in place and the client's signature algorithms pick.
    """
    data = chain.pem()
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None and Path("/proc/self/fd").is_dir():
        descriptor = memfd_create("mailseal-chain", getattr(os, "MFD_CLOEXEC", 0))
        try:
            written = 0
            while written < len(data):
                written += os.write(descriptor, data[written:])
            path = f"/proc/self/fd/{descriptor}"
            context.load_cert_chain(path, path, password=_no_passphrase)
        finally:
            os.close(descriptor)
        return
    with tempfile.TemporaryDirectory(prefix="mailseal-chain-") as directory:
        path = str(Path(directory) / "chain.pem")
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
        context.load_cert_chain(path, path, password=_no_passphrase)


def _no_passphrase() -> bytes:
    # An encrypted key must never reach OpenSSL's default callback, which would
    # prompt on the terminal; Postfix reads keys without a passphrase too.
    raise ValueError("encrypted keys are not supported")


def ssl_option_bits(names: tuple[str, ...]) -> tuple[int, tuple[str, ...]]:
    """The OpenSSL option bits ``tls_ssl_options`` names, and the names not understood."""
    bits = 0
    unknown: list[str] = []
    for name in names:
        try:
            bits |= int(name, 0)
            continue
        except ValueError:
            pass
        value = getattr(ssl, f"OP_{name.upper()}", None)
        if isinstance(value, int):
            bits |= value
        else:
            unknown.append(name)
    return bits, tuple(unknown)
