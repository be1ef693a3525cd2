"""Decisions: address classes, recipient checks, smtpd restrictions, cleanup, queue manager."""
