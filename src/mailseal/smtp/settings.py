"""What one SMTP server session needs to know, as plain values (no ``Config`` import).

The driver fills ``ServerSettings`` from the service's ``Config``; each field names the
main.cf parameter it stands for: ``myhostname``, ``smtpd_banner``, ``line_length_limit``,
``message_size_limit``, ``smtpd_recipient_limit``, ``smtpd_hard_error_limit``,
``smtpd_junk_command_limit``, ``disable_vrfy_command``, ``smtpd_helo_required``,
``smtpd_tls_security_level`` (may/encrypt), ``smtpd_tls_wrappermode``,
``smtpd_forbid_bare_newline`` (and its ``_reject_code``),
``smtpd_forbid_unauth_pipelining``, ``smtpd_discard_ehlo_keywords``, and for AUTH
``smtpd_sasl_auth_enable`` (a non-empty mechanism list), ``smtpd_tls_auth_only``,
``smtpd_sasl_response_limit`` and ``broken_sasl_auth_clients``.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailseal.smtp.reply import Reply

__all__ = ["BARE_NEWLINE_MODES", "ServerSettings", "ehlo_keywords"]

# smtpd_forbid_bare_newline values since Postfix 3.9 (and 3.8.5, 3.7.10): "yes" is a
# compatibility alias for "normalize"; only "reject" refuses bare LF. (In 3.7.9 and 3.8.4
# "yes" meant reject; Postfix changed it, and we follow today's meaning.)
BARE_NEWLINE_MODES = frozenset({"no", "normalize", "yes", "reject"})


@dataclass(frozen=True)
class ServerSettings:
    """Per-session settings of the SMTP server core (Postfix defaults)."""

    hostname: str
    banner: str
    line_length_limit: int = 2048
    message_size_limit: int = 10240000
    recipient_limit: int = 1000
    hard_error_limit: int = 20
    junk_command_limit: int = 100
    disable_vrfy: bool = False
    helo_required: bool = False
    starttls_offered: bool = False
    tls_required: bool = False
    tls_local_problem: bool = False
    tls_active: bool = False
    bare_newline: str = "normalize"
    bare_newline_reject_code: int = 550
    forbid_unauth_pipelining: bool = True
    pipelining: bool = True
    eightbitmime: bool = True
    dsn: bool = True
    chunking: bool = True
    smtputf8: bool = True
    enhanced_status_codes: bool = True
    discard_ehlo_keywords: frozenset[str] = frozenset()
    auth_mechanisms: tuple[str, ...] = ()  # offered SASL mechanisms; () = AUTH off
    auth_tls_only: bool = False
    auth_response_limit: int = 12288
    auth_broken_clients: bool = False  # also announce "AUTH=MECH ..." (old Outlook)
    # smtpd_delay_reject = no and the client restrictions refused the client: this reply
    # replaces the banner, and every later command but QUIT gets Postfix's
    # "503 5.7.0 Error: access denied for <client>" (smtpd.c, RFC 5321 section 3.1).
    access_denied: Reply | None = None
    client: str = ""  # host[addr], for that 503 text

    def __post_init__(self) -> None:
        if self.bare_newline not in BARE_NEWLINE_MODES:
            raise ValueError(f"bare_newline must be no/normalize/yes/reject: {self.bare_newline!r}")
        if self.line_length_limit < 1 or self.message_size_limit < 0:
            raise ValueError("line_length_limit must be positive, message_size_limit >= 0")
        if not 400 <= self.bare_newline_reject_code <= 599:
            raise ValueError("bare_newline_reject_code must be a 4xx or 5xx code")
        # Keywords are compared upper-case, as Postfix's ehlo_mask() does.
        object.__setattr__(
            self, "discard_ehlo_keywords", frozenset(k.upper() for k in self.discard_ehlo_keywords)
        )

    @property
    def rejects_bare_newline(self) -> bool:
        """``smtpd_forbid_bare_newline = reject``: a bare LF gets a reply and a hang-up."""
        return self.bare_newline == "reject"

    def auth_offered(self, *, tls_active: bool) -> bool:
        """AUTH is announced and accepted now: enabled, and TLS is on if it must be."""
        return self.enabled("AUTH") and (tls_active or not self.auth_tls_only)

    def enabled(self, keyword: str) -> bool:
        """Whether the ESMTP feature ``keyword`` is on: switched on and not discarded."""
        switch = {
            "PIPELINING": self.pipelining,
            "SIZE": True,
            "VRFY": not self.disable_vrfy,
            "STARTTLS": self.starttls_offered and not self.tls_local_problem,
            "AUTH": bool(self.auth_mechanisms),
            "ENHANCEDSTATUSCODES": self.enhanced_status_codes,
            "8BITMIME": self.eightbitmime,
            "DSN": self.dsn,
            "SMTPUTF8": self.smtputf8,
            "CHUNKING": self.chunking,
        }[keyword]
        return switch and keyword not in self.discard_ehlo_keywords


def _size_keyword(settings: ServerSettings) -> str:
    # RFC 1870 section 4: "SIZE 0" or bare SIZE means no fixed limit; Postfix sends bare SIZE.
    limit = settings.message_size_limit
    return f"SIZE {limit}" if limit else "SIZE"


def _auth_keyword(settings: ServerSettings) -> str:
    return "AUTH " + " ".join(settings.auth_mechanisms)


def _old_auth_keyword(settings: ServerSettings) -> str:
    # broken_sasl_auth_clients: the pre-RFC 2554 form some old clients look for.
    return "AUTH=" + " ".join(settings.auth_mechanisms)


# The EHLO reply, in Postfix's order (smtpd.c ehlo_cmd). Each row: keyword and how it is
# written; STARTTLS also disappears once TLS is on (RFC 3207 section 4.2). ETRN, XCLIENT
# and XFORWARD are Postfix features mailseal does not have.
_EHLO_KEYWORDS: tuple[tuple[str, str | None], ...] = (
    ("PIPELINING", None),
    ("SIZE", "size"),
    ("VRFY", None),
    ("STARTTLS", None),
    ("AUTH", "auth"),
    ("ENHANCEDSTATUSCODES", None),
    ("8BITMIME", None),
    ("DSN", None),
    ("SMTPUTF8", None),
    ("CHUNKING", None),
)
_RENDER = {"size": _size_keyword, "auth": _auth_keyword}


def ehlo_keywords(settings: ServerSettings, *, tls_active: bool) -> list[str]:
    """The lines after the hostname in the EHLO reply (RFC 5321 section 4.1.1.1)."""
    lines = []
    for keyword, render in _EHLO_KEYWORDS:
        if not settings.enabled(keyword) or (keyword == "STARTTLS" and tls_active):
            continue
        if keyword == "AUTH" and not settings.auth_offered(tls_active=tls_active):
            continue  # smtpd_tls_auth_only: not before TLS
        lines.append(_RENDER[render](settings) if render else keyword)
        if keyword == "AUTH" and settings.auth_broken_clients:
            lines.append(_old_auth_keyword(settings))
    return lines
