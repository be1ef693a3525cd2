"""sendmail(1)'s command line, read the way Postfix's sendmail.c reads it.

Options are getopt(3) style with Postfix's list ``A:B:C:F:GIL:N:O:R:UV:X:b:ce:f:h:
imno:p:r:q:tvx`` and no argument permutation (the first non-option starts the
recipients; ``--`` ends the options). A lone ``-q`` is flush mode (getopt
cannot express it). What each option does follows sendmail(1):

* modes: ``-bm`` (default) deliver, ``-bs`` SMTP on stdin/stdout, ``-bp``
  mailq, ``-q`` flush, ``-bi``/``-I`` newaliases, ``-bd`` start the mail system,
  ``-bh``/``-bH`` do nothing, ``-qNNN`` (a queue interval) does nothing,
  ``-qRsite`` flushes the mail for one site;
* ``-t`` recipients from the headers too; ``-i``/``-oi``: a line with a single
  dot does not end the input; ``-f``/``-r`` sender; ``-F`` full name;
  ``-N`` DSN notify (``never`` or ``success,delay,failure``); ``-V`` DSN envid;
  ``-B`` body type (``7BIT``/``8BITMIME``); ``-C`` configuration directory
  (or the path of its main.cf); ``-oA`` the alias database of ``-bi``;
* ignored as Postfix ignores them: ``-A``, ``-c``, ``-e``, ``-G``, ``-h``,
  ``-L``, ``-m``, ``-O``, ``-o`` (other than ``-oi``/``-oA``), ``-p``, ``-R``,
  ``-U``, ``-v``, ``-x``; refused as Postfix refuses them: ``-n``, ``-X``.

Problems are :class:`UsageError` (exit status EX_USAGE) with Postfix's wording;
warnings are collected for the caller to print. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import PurePath

__all__ = ["Mode", "Options", "UsageError", "notify_mask", "parse_options"]

_WITH_ARGUMENT = frozenset("ABCFLNORVXbefhopqr")
_FLAGS = frozenset("GIUcimntvx")
_NOTIFY_WORDS = ("SUCCESS", "FAILURE", "DELAY")
_ENVID_MAX = 100  # Postfix's limit on -V


class Mode(Enum):
    """sendmail.c's modes of operation."""

    ENQUEUE = "deliver"
    NEWALIAS = "newaliases"
    MAILQ = "mailq"
    DAEMON = "daemon"
    USER = "stand-alone SMTP"
    FLUSHQ = "flush"
    IGNORE = "ignore"


class UsageError(Exception):
    """Bad usage: ``sendmail: fatal: MESSAGE``, exit status EX_USAGE (64).

    ``detail`` is getopt's own complaint, printed on the line before.
    """

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


@dataclass(frozen=True)
class Options:
    mode: Mode = Mode.ENQUEUE
    extract: bool = False  # -t
    dot_ends_input: bool = True  # cleared by -i / -oi
    sender: str | None = None  # -f / -r
    full_name: str | None = None  # -F
    notify: str = ""  # -N, in RFC 3461 NOTIFY form
    envid: str = ""  # -V, as given (printable ASCII)
    body: str = ""  # -B
    config_dir: str | None = None  # -C
    alias_database: str | None = None  # -oA
    queue_interval: bool = False  # -qNNN: nothing to do
    flush_site: str | None = None  # -qRsite
    recipients: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=())


def notify_mask(text: str) -> str | None:
    """``-N`` value in NOTIFY form, or None when it is not valid (dsn_notify_mask)."""
    words = [w.upper() for w in text.replace(",", " ").split()]
    if not words or any(w not in (*_NOTIFY_WORDS, "NEVER") for w in words):
        return None
    if "NEVER" in words:
        return "NEVER" if set(words) == {"NEVER"} else None
    return ",".join(w for w in _NOTIFY_WORDS if w in words)


def _getopt(argv: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """getopt(3) with ``+`` (no permutation); ``-q`` alone is an option of its own."""
    found: list[tuple[str, str]] = []
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == "--":
            index += 1
            break
        if not arg.startswith("-") or arg == "-":
            break
        if arg == "-q":
            found.append(("q", ""))
            index += 1
            continue
        position = 1
        while position < len(arg):
            char = arg[position]
            if char in _WITH_ARGUMENT:
                if position + 1 < len(arg):
                    value = arg[position + 1 :]
                elif index + 1 < len(argv):
                    index += 1
                    value = argv[index]
                else:
                    raise _bad_usage(f"option requires an argument -- '{char}'")
                found.append((char, value))
                break
            if char not in _FLAGS:
                raise _bad_usage(f"invalid option -- '{char}'")
            found.append((char, ""))
            position += 1
        index += 1
    return found, argv[index:]


def _bad_usage(detail: str) -> UsageError:
    return UsageError("usage: sendmail [options]", detail)


def _verp_rewrite(argv: list[str]) -> list[str]:
    """Postfix 2.2's ``-V`` and ``-Vxy`` meant VERP; Postfix rewrites them to ``-XV``."""
    out: list[str] = []
    for index, arg in enumerate(argv):
        following = argv[index + 1] if index + 1 < len(argv) else None
        if arg == "-V" and following is not None and len(following) == 2:
            out.append("-XV")
        elif arg.startswith("-V") and len(arg) == 4:
            out.append("-X" + arg[1:])
        else:
            out.append(arg)
    return out


def _mode_option(options: Options, value: str) -> Options:
    """``-bX``."""
    modes = {
        "d": Mode.DAEMON,
        "h": Mode.IGNORE,
        "H": Mode.IGNORE,
        "i": Mode.NEWALIAS,
        "m": Mode.ENQUEUE,
        "p": Mode.MAILQ,
        "s": Mode.USER,
    }
    letter = value[:1]
    if letter not in modes:
        # -bv (address verification reports) is a Postfix feature mailseal lacks.
        raise UsageError(f"unsupported: -b{letter}")
    return replace(options, mode=modes[letter])


def _o_option(options: Options, value: str) -> Options:
    """``-oX``: only ``-oi`` and ``-oA`` mean something; the rest is sendmail history."""
    if value.startswith("A"):
        if len(value) == 1:
            raise UsageError("-oA requires pathname")
        return replace(options, alias_database=value[1:])
    if value.startswith("i"):
        return replace(options, dot_ends_input=False)
    return options


def _q_option(options: Options, value: str) -> Options:
    if not value:
        return replace(options, mode=Mode.FLUSHQ)
    if value[0].isdigit():
        return replace(options, queue_interval=True)
    if value[0] == "R":
        if len(value) == 1:
            raise UsageError("specify: -qRsitename")
        return replace(options, flush_site=value[1:])
    # -qI hands over to postqueue -i in Postfix; mailseal's postqueue has no -i.
    raise UsageError(f"-q{value[0]} is not implemented")


def _envid(options: Options, value: str) -> Options:
    if len(value) > _ENVID_MAX:
        return _warn(options, "too long -V option value -- ignored")
    if not value or not all(32 <= ord(c) < 127 for c in value):
        return _warn(options, "bad syntax in -V option value -- ignored")
    return replace(options, envid=value)


def _warn(options: Options, text: str) -> Options:
    return replace(options, warnings=(*options.warnings, text))


def _refuse(message: str) -> Callable[[Options, str], Options]:
    def refuse(options: Options, value: str) -> Options:
        raise UsageError(message.format(value=value[:1]))

    return refuse


def _body(options: Options, value: str) -> Options:
    if value not in ("8BITMIME", "7BIT"):
        raise UsageError("-B option needs 8BITMIME or 7BIT")
    return replace(options, body=value)


def _notify(options: Options, value: str) -> Options:
    mask = notify_mask(value)
    if mask is None:
        return _warn(options, "bad -N option value -- ignored")
    return replace(options, notify=mask)


def _config_dir(options: Options, value: str) -> Options:
    path = PurePath(value)
    return replace(options, config_dir=str(path.parent) if path.name == "main.cf" else value)


# Option letter -> what it does. Letters of the getopt list that are missing here
# (A c e G h L m O p R U v x) are accepted and ignored, as Postfix ignores them.
_OPTIONS: dict[str, Callable[[Options, str], Options]] = {
    "n": _refuse("-n option not supported"),
    # -XV is VERP, which mailseal does not do; any other -X Postfix refuses too.
    "X": _refuse("unsupported: -X{value}"),
    "B": _body,
    "F": lambda options, value: replace(options, full_name=value),
    "I": lambda options, _: replace(options, mode=Mode.NEWALIAS),
    "N": _notify,
    "V": _envid,
    "b": _mode_option,
    "f": lambda options, value: replace(options, sender=value),
    "r": lambda options, value: replace(options, sender=value),
    "i": lambda options, _: replace(options, dot_ends_input=False),
    "o": _o_option,
    "q": _q_option,
    "t": lambda options, _: replace(options, extract=True),
    "C": _config_dir,
}


def parse_options(argv: list[str], default_mode: Mode = Mode.ENQUEUE) -> Options:
    """Parse sendmail's arguments; :class:`UsageError` for bad usage."""
    found, recipients = _getopt(_verp_rewrite(argv))
    options = Options(mode=default_mode)
    for letter, value in found:
        handler = _OPTIONS.get(letter)
        if handler is not None:
            options = handler(options, value)
    if options.extract and options.mode is not Mode.ENQUEUE:
        raise UsageError("-t can be used only in delivery mode")
    if options.flush_site is not None and options.mode is not Mode.ENQUEUE:
        raise UsageError("-qR can be used only in delivery mode")
    if options.flush_site is not None and recipients:
        raise UsageError("flush site requires no recipient")
    return replace(options, recipients=tuple(recipients))
