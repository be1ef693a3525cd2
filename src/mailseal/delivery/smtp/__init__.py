"""smtp(8): the SMTP delivery agent (RFC 5321 client with Postfix's TLS levels, SASL, reuse).

The queue manager makes one :class:`SmtpAgent` and calls ``await agent.deliver(request)``
with an :class:`SmtpRequest` per message and next hop; it gets one
:class:`RecipientResult` per recipient and logs the ``to=`` line under the result's
``number``. ``reconfigure(config)`` after a reload, ``aclose()`` at shutdown.
"""

from mailseal.delivery.smtp.agent import SmtpAgent
from mailseal.delivery.smtp.request import RecipientResult, SmtpRequest

__all__ = ["RecipientResult", "SmtpAgent", "SmtpRequest"]
