"""The SMTP protocol as a sans-IO state machine: bytes in, events and replies out.

Nothing here touches sockets, asyncio, ssl, the OS, the clock or logging; the
drivers in :mod:`mailseal.net` feed bytes in and write the replies out.

Server side (RFC 5321 with PIPELINING, SIZE, 8BITMIME, DSN, SMTPUTF8, CHUNKING,
ENHANCEDSTATUSCODES and STARTTLS; Postfix 3.9 semantics and reply texts):

- ``server``: ``SmtpServer``, the facade (``receive_data`` / ``next_event`` /
  ``answer`` / ``data_to_send``), and ``ServerSettings`` (from ``settings``).
- ``events``: the requests the driver answers and the notices it logs.
- ``reply``: ``Reply`` and Postfix's wording for every reply.
- ``commands``: the command table (verb, handler, flags) and the dispatcher;
  ``verbs`` holds the handlers, ``session`` the per-connection state.
- ``addresses``: MAIL/RCPT paths and ESMTP parameters; ``content``: DATA and BDAT
  framing (end of data, dot-unstuffing, bare newlines, size and NUL checks).
"""
