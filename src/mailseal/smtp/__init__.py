"""The SMTP protocol as a sans-IO state machine: bytes in, events and replies out.

Nothing here touches sockets, asyncio, ssl, the OS, the clock or logging; the
drivers in :mod:`mailseal.net` feed bytes in and write the replies out.
"""
