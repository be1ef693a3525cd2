"""main.cf reading and ``postconf -e`` editing, compared with Postfix's observed behaviour."""

import pytest

from mailseal.config.errors import ConfigError
from mailseal.config.maincf import edit_main_cf, parse_main_cf

TEXT = """\
# a comment
myhostname = a.example.com
smtpd_banner = one
  two
# a comment between continuation lines is skipped, as in Postfix
\tthree
mynetworks=127.0.0.0/8 # not a comment
   # indented comment
smtpd_tls_protocols = !SSLv2, !SSLv3, !TLSv1
myhostname = b.example.com
relayhost =
"""


def test_parse_joins_continuations_and_keeps_values_as_written() -> None:
    main = parse_main_cf(TEXT, "/etc/mailseal/main.cf")
    settings = main.settings()
    assert settings["smtpd_banner"].value == "one two three"
    assert settings["mynetworks"].value == "127.0.0.0/8 # not a comment"
    assert settings["smtpd_tls_protocols"].value == "!SSLv2, !SSLv3, !TLSv1"
    assert settings["relayhost"].value == ""


def test_parse_last_definition_wins_with_its_line() -> None:
    setting = parse_main_cf(TEXT, "main.cf").settings()["myhostname"]
    assert setting.value == "b.example.com"
    assert str(setting.location) == "main.cf, line 10"


def test_parse_missing_equals_is_an_error_with_file_and_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_main_cf("myhostname = a\nbogus line\n", "/x/main.cf")
    assert (
        str(caught.value) == "/x/main.cf, line 2: missing '=' after attribute name: \"bogus line\""
    )


def test_parse_leading_whitespace_is_a_warning_and_ignored() -> None:
    main = parse_main_cf("  leading = x\nmyhostname = b\n", "main.cf")
    assert [str(w) for w in main.warnings] == [
        'main.cf, line 1: logical line must not start with whitespace: "  leading = x"'
    ]
    assert list(main.settings()) == ["myhostname"]


def test_edit_replaces_every_definition_keeps_comments_and_appends_new() -> None:
    text = "# head\nmyhostname = a\n  cont\n# mid\nmyhostname = b\nrelayhost = x\n"
    edited, warnings = edit_main_cf(
        text, "main.cf", {"myhostname": "new", "newparam": "1", "relayhost": ""}
    )
    assert edited == (
        "# head\nmyhostname = new\n# mid\nmyhostname = new\nrelayhost = \nnewparam = 1\n"
    )
    assert [str(w) for w in warnings] == ['main.cf, line 5: multiple entries for "myhostname"']


def test_edit_removes_or_comments_out() -> None:
    text = "a = 1\nb = 2\n  more\nc = 3\n"
    removed, _ = edit_main_cf(text, "main.cf", {"b": None})
    assert removed == "a = 1\nc = 3\n"
    commented, _ = edit_main_cf(text, "main.cf", {"b": None}, comment_out=True)
    assert commented == "a = 1\n# b = 2\n#   more\nc = 3\n"
