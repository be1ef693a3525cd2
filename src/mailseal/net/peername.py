"""The client's name as Postfix's smtpd finds it: PTR, confirmed by a forward lookup.

A name that does not resolve back to the address is ``unknown`` (smtpd(8),
``smtpd_peername_lookup``), so a client cannot claim a name by its PTR alone.
"""

from __future__ import annotations

import asyncio
import socket

__all__ = ["reverse_lookup"]

# Neither lookup may hold a session up for long.
_LOOKUP_TIMEOUT = 5.0


async def reverse_lookup(addr: str) -> str:
    """PTR name confirmed by a forward lookup, else ``unknown`` (Postfix's rule)."""
    loop = asyncio.get_running_loop()
    try:
        lookup = loop.getnameinfo((addr, 0), socket.NI_NAMEREQD)
        name, _ = await asyncio.wait_for(lookup, _LOOKUP_TIMEOUT)
        infos = await asyncio.wait_for(loop.getaddrinfo(name, None), _LOOKUP_TIMEOUT)
    except (OSError, TimeoutError):
        return "unknown"
    if any(info[4][0] == addr for info in infos):
        return str(name)
    return "unknown"
