"""Edges to the network: asyncio drivers for the SMTP core, listeners, STARTTLS upgrades."""
