"""MAIL/RCPT path and parameter parsing."""

from __future__ import annotations

import pytest

from mailseal.smtp.addresses import (
    is_xtext,
    parse_mail_params,
    parse_path,
    parse_rcpt_params,
    xtext_decode,
)
from mailseal.smtp.reply import RemoteProtocolError


@pytest.mark.parametrize(
    ("argument", "address", "words"),
    [
        ("FROM:<a@b.example>", "a@b.example", ()),
        ("from: <a@b> SIZE=5 BODY=7BIT", "a@b", ("SIZE=5", "BODY=7BIT")),
        ("FROM:<>", "", ()),
        ("FROM:a@b SIZE=1", "a@b", ("SIZE=1",)),
        ("FROM:<@x.example,@y.example:u@d>", "u@d", ()),
        ('FROM:<"a>b c"@d>', "a>b c@d", ()),
        ('FROM:<"q\\"x"@d>', 'q"x@d', ()),
        ("FROM:<u@[192.0.2.1]>", "u@[192.0.2.1]", ()),
        ("FROM:<postmaster>", "postmaster", ()),
        ("FROM:<\u00e9@b\u00fc.example>", "\u00e9@b\u00fc.example", ()),
    ],
)
def test_paths(argument: str, address: str, words: tuple[str, ...]) -> None:
    path = parse_path(argument, "FROM")
    assert path is not None
    assert (path.address, path.words) == (address, words)


@pytest.mark.parametrize("argument", ["TO:<a@b>", "FROM", "FROM:", "FROM:   "])
def test_command_syntax_errors(argument: str) -> None:
    assert parse_path(argument, "FROM") is None


@pytest.mark.parametrize(
    "argument",
    [
        "FROM:<a@b",
        "FROM:<a@b>x",
        "FROM:<a b@c>",
        "FROM:<a@>",
        "FROM:<@x:>",
        "FROM:<@x>",
        'FROM:<"open@b>',
        "FROM:<a@b c>",
        "FROM:<a@b_(c)>",
        "FROM:<a\x01@b>",
        "FROM:<a@b@c>",
    ],
)
def test_bad_addresses(argument: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_path(argument, "FROM")


def test_xtext() -> None:
    assert is_xtext("abc+2Bdef")
    assert not is_xtext("a+zz")
    assert not is_xtext("a b")
    assert xtext_decode("a+2Bb+3D") == "a+b="


def test_mail_params_keep_values() -> None:
    words = ("size=10", "Body=8bitmime", "SMTPUTF8", "RET=hdrs", "ENVID=x+2By", "AUTH=<>")
    assert parse_mail_params(words, dsn=True, smtputf8=True, auth=True) == {
        "SIZE": "10",
        "BODY": "8bitmime",
        "SMTPUTF8": "",
        "RET": "hdrs",
        "ENVID": "x+2By",
        "AUTH": "<>",
    }


@pytest.mark.parametrize(
    ("words", "text"),
    [
        (("SMTPUTF8",), "555 5.5.4 Unsupported option: SMTPUTF8"),
        (("RET=FULL", "RET=FULL"), "501 5.5.4 Bad RET parameter syntax"),
        (("ENVID=",), "501 5.5.4 Bad ENVID parameter syntax"),
        (("ENVID=a+0A",), "501 5.5.4 Bad ENVID parameter syntax"),
        (("AUTH=a b",), "501 5.5.4 Bad AUTH parameter syntax"),
        (("AUTH=<>", "AUTH=<>"), "503 5.5.4 Error: multiple AUTH= options"),
        (("SIZE",), "555 5.5.4 Unsupported option: SIZE"),
    ],
)
def test_mail_param_errors(words: tuple[str, ...], text: str) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        parse_mail_params(words, dsn=True, smtputf8=False, auth=True)
    assert caught.value.reply.text == text


def test_mail_auth_param_needs_sasl() -> None:
    # Postfix's smtpd_sasl_mail_opt(): AUTH= while SASL is off is a protocol error.
    with pytest.raises(RemoteProtocolError) as caught:
        parse_mail_params(("AUTH=<>",), dsn=True, smtputf8=False)
    assert caught.value.reply.text == "503 5.5.4 Error: authentication disabled"


def test_rcpt_params() -> None:
    got = parse_rcpt_params(("notify=FAILURE,DELAY", "ORCPT=rfc822;a+40b"), dsn=True)
    assert got == {"NOTIFY": "FAILURE,DELAY", "ORCPT": "rfc822;a+40b"}
    for bad in (("NOTIFY=",), ("NOTIFY=DELAY,DELAY",), ("ORCPT=;x",), ("ORCPT=rfc822;a+4",)):
        with pytest.raises(RemoteProtocolError):
            parse_rcpt_params(bad, dsn=True)
    with pytest.raises(RemoteProtocolError) as caught:
        parse_rcpt_params(("NOTIFY=NEVER",), dsn=False)
    assert caught.value.reply.text == "501 5.7.1 DSN support is disabled"
