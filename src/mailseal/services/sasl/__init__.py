"""SASL authentication for smtpd: backends and the users file."""
