"""Unix-domain socket paths longer than ``sun_path`` allows.

Linux keeps a socket's path in ``struct sockaddr_un.sun_path``: 108 bytes including
the terminating NUL, so a deep ``queue_directory`` (test directories, containers)
cannot name ``$queue_directory/private/control`` directly. Both ends therefore go
through the directory: it is opened, and the socket is named relative to
``/proc/self/fd/N``, the kernel's link to that open directory, which is always short.
Short paths are used as they are.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

__all__ = ["SUN_PATH_MAX", "bind_unix", "connect_unix", "unlink_unix"]

# sizeof(sun_path) on Linux, less the terminating NUL.
SUN_PATH_MAX = 107


@contextlib.contextmanager
def _short_name(path: Path) -> Iterator[str]:
    """A name for ``path`` that fits in ``sun_path``, valid inside the ``with`` block."""
    if len(os.fsencode(path)) <= SUN_PATH_MAX:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def bind_unix(path: Path, mode: int = 0o600) -> socket.socket:
    """A listening stream socket at ``path`` with ``mode``; a stale socket file is replaced.

    The caller makes sure no live server owns ``path`` (the master holds its PID file).
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with _short_name(path) as name:
            Path(name).unlink(missing_ok=True)
            sock.bind(name)
            # Not umask: it is process-wide, and worker threads create Maildir
            # directories meanwhile. The parent directory is 0700, so nobody else
            # can reach the socket in the instant before the chmod.
            Path(name).chmod(mode)
        sock.listen(16)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def connect_unix(path: Path, timeout: float) -> socket.socket:
    """A blocking stream socket connected to ``path`` (``OSError`` when nobody listens)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        with _short_name(path) as name:
            sock.connect(name)
    except BaseException:
        sock.close()
        raise
    return sock


def unlink_unix(path: Path) -> None:
    """Remove the socket file at ``path`` (``FileNotFoundError`` if it is gone)."""
    with _short_name(path) as name:
        Path(name).unlink()
