"""Transports that deliver a queued message: Maildir (local, virtual), discard, error."""
