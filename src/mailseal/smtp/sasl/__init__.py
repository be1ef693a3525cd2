"""SASL for SMTP AUTH (RFC 4954) as sans-IO step machines: PLAIN, LOGIN, SCRAM-SHA-256."""
