"""Session-ticket keys shared by the smtpd worker processes (Postfix's tlsmgr does this).

A TLS session ticket is encrypted with keys the server process holds. With
several smtpd processes, a client that comes back to another process than the
one that issued its ticket cannot resume, unless all of them use the same keys:
Postfix's tlsmgr(8) hands the keys to every smtpd; mailseal's master makes one
key set (:func:`new_ticket_keys`) and gives it to each worker at start.

Python's ``ssl`` module has no call for this, so :func:`share_ticket_keys`
reaches OpenSSL's ``SSL_CTX_set_tlsext_ticket_keys`` through ctypes. It first
proves that it found the right ``SSL_CTX`` (OpenSSL's options of that context
must equal ``context.options``) and reads the keys back; if anything does not
match it changes nothing and says so, and resumption then simply works within
one worker only.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import secrets
import ssl
import sys

__all__ = ["TICKET_KEYS_LENGTH", "new_ticket_keys", "share_ticket_keys"]

# OpenSSL 1.1/3.x: 16 bytes key name, 32 bytes HMAC secret, 32 bytes AES key.
TICKET_KEYS_LENGTH = 80
_SSL_CTRL_GET_TLSEXT_TICKET_KEYS = 58
_SSL_CTRL_SET_TLSEXT_TICKET_KEYS = 59


def new_ticket_keys() -> bytes:
    """A fresh random key set."""
    return secrets.token_bytes(TICKET_KEYS_LENGTH)


def _libssl() -> ctypes.CDLL | None:
    # The soname the _ssl module was linked with: dlopen returns the loaded copy.
    for name in ("libssl.so.3", "libssl.so.1.1", ctypes.util.find_library("ssl")):
        if not name:
            continue
        try:
            library = ctypes.CDLL(name)
        except OSError:
            continue
        library.SSL_CTX_ctrl.restype = ctypes.c_long
        library.SSL_CTX_ctrl.argtypes = [
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_long,
            ctypes.c_void_p,
        ]
        library.SSL_CTX_get_options.restype = ctypes.c_uint64
        library.SSL_CTX_get_options.argtypes = [ctypes.c_void_p]
        return library
    return None


def _ssl_ctx_pointer(context: ssl.SSLContext) -> int:
    """CPython's ``PySSLContext`` starts with its ``SSL_CTX *`` right after the object head."""
    head = sys.getsizeof(object())  # ob_refcnt + ob_type: 16 bytes on 64-bit builds
    return ctypes.c_void_p.from_address(id(context) + head).value or 0


def _unusable(keys: bytes) -> str | None:
    if len(keys) != TICKET_KEYS_LENGTH:
        return f"ticket keys must be {TICKET_KEYS_LENGTH} bytes"
    if "OpenSSL 3." not in ssl.OPENSSL_VERSION and "OpenSSL 1.1" not in ssl.OPENSSL_VERSION:
        return f"unsupported TLS library: {ssl.OPENSSL_VERSION}"
    return None


def share_ticket_keys(context: ssl.SSLContext, keys: bytes) -> str | None:
    """Make ``context`` encrypt and decrypt tickets with ``keys``; None, or why not.

    A context that issues no tickets (``smtpd_tls_session_cache_timeout = 0``) is left alone.
    """
    if context.options & ssl.OP_NO_TICKET:
        return None
    library = _libssl()
    problem = _unusable(keys) or (None if library else "libssl not found")
    if problem is not None or library is None:
        return problem
    pointer = _ssl_ctx_pointer(context)
    if not pointer or library.SSL_CTX_get_options(pointer) != int(context.options):
        return "cannot find the OpenSSL context of this SSLContext"
    buffer = ctypes.create_string_buffer(keys, TICKET_KEYS_LENGTH)
    if library.SSL_CTX_ctrl(pointer, _SSL_CTRL_SET_TLSEXT_TICKET_KEYS, len(keys), buffer) != 1:
        return "OpenSSL refused the ticket keys"
    check = ctypes.create_string_buffer(TICKET_KEYS_LENGTH)
    library.SSL_CTX_ctrl(pointer, _SSL_CTRL_GET_TLSEXT_TICKET_KEYS, len(keys), check)
    if check.raw != keys:
        return "the ticket keys did not take"
    return None
