"""mailseal: a mail transfer agent whose centre is TLS done right, configured like Postfix."""

__version__ = "0.1.0"
