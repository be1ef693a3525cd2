"""master.cf reading and ``postconf -M`` formatting (column stops as Postfix prints them)."""

import pytest

from mailseal.config.errors import ConfigError
from mailseal.config.mastercf import format_service, inet_port, known_port, parse_master_cf

SEED_SUBMISSION = """\
submission  inet  n     -       n       -       -       smtpd
    -o smtpd_etrn_restrictions=reject
    -o smtpd_sasl_auth_enable=yes
    -o smtpd_recipient_restrictions=permit_mynetworks,permit_sasl_authenticated,reject
    -o smtpd_client_restrictions=permit_mynetworks,permit_sasl_authenticated,reject
    -o smtpd_helo_restrictions=permit_mynetworks,permit
  -o smtpd_tls_security_level=encrypt
"""


def test_seed_submission_section_overrides() -> None:
    master = parse_master_cf(SEED_SUBMISSION, "master.cf")
    (service,) = master.services
    assert service.key == "submission/inet"
    assert service.is_smtpd
    assert service.settings()["smtpd_tls_security_level"].value == "encrypt"
    assert [o.name for o in service.overrides] == [
        "smtpd_etrn_restrictions",
        "smtpd_sasl_auth_enable",
        "smtpd_recipient_restrictions",
        "smtpd_client_restrictions",
        "smtpd_helo_restrictions",
        "smtpd_tls_security_level",
    ]


def test_long_form_override_and_other_arguments_keep_their_order() -> None:
    text = "127.0.0.1:2525 inet n - n - - smtpd -o { smtpd_banner = hello there $myhostname } -v\n"
    (service,) = parse_master_cf(text, "master.cf").services
    assert service.settings()["smtpd_banner"].value == "hello there $myhostname"
    assert service.args == ("-o", "{smtpd_banner=hello there $myhostname}", "-v")
    assert format_service(service) == (
        "127.0.0.1:2525 inet n    -       n       -       -       "
        "smtpd -o {smtpd_banner=hello there $myhostname} -v"
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "smtp      inet  n       -       y       -       -       smtpd",
            "smtp       inet  n       -       y       -       -       smtpd",
        ),
        (
            "postlog   unix-dgram n  -       n       -       1       postlogd",
            "postlog    unix-dgram n  -       n       -       1       postlogd",
        ),
        (
            "scalemail-backend unix - n n - 2 pipe flags=R user=scalemail argv=/bin/x ${nexthop}",
            "scalemail-backend unix - n       n       -       2       "
            "pipe flags=R user=scalemail argv=/bin/x ${nexthop}",
        ),
        (
            "tlsmgr    unix  -       -       y       1000?   1       tlsmgr",
            "tlsmgr     unix  -       -       y       1000?   1       tlsmgr",
        ),
    ],
)
def test_format_service_matches_postconf_m(line: str, expected: str) -> None:
    (service,) = parse_master_cf(line + "\n", "master.cf").services
    assert format_service(service) == expected


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("foo inet n - n - -", "bad field count"),
        ("foo bogus n - n - - smtpd", 'invalid type field "bogus" in "foo bogus n - n - - smtpd"'),
        ("foo inet x - n - - smtpd", 'invalid private field "x" in "foo inet x - n - - smtpd"'),
        (
            "foo inet n - n abc - smtpd",
            'invalid wakeup field "abc" in "foo inet n - n abc - smtpd"',
        ),
        (
            "foo inet n - n - x smtpd",
            'invalid process_limit field "x" in "foo inet n - n - x smtpd"',
        ),
        ("foo inet n - n - - smtpd -o", 'missing "name=value" after -o'),
        ("foo inet n - n - - smtpd -o nonequal", "missing '=' after attribute name: \"nonequal\""),
        ("foo inet n - n - - smtpd -o { a = b", "missing '}' in \"{ a = b\""),
    ],
)
def test_bad_entries_name_file_and_line(line: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_master_cf("# first line\n" + line + "\n", "/x/master.cf")
    assert str(caught.value) == f"/x/master.cf, line 2: {message}"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("smtp", (None, "smtp")),
        ("2525", (None, "2525")),
        ("127.0.0.1:2525", ("127.0.0.1", "2525")),
        ("[::1]:submission", ("::1", "submission")),
    ],
)
def test_inet_port(name: str, expected: tuple[str | None, str]) -> None:
    assert inet_port(name) == expected


def test_inet_port_rejects_malformed() -> None:
    with pytest.raises(ValueError, match="bad inet service name"):
        inet_port("[::1:25")


def test_known_port_reads_postfix_known_tcp_ports() -> None:
    table = ("lmtp=24", "smtp=25", "smtps=submissions=465", "submission=587")
    assert known_port("submissions", table) == "465"
    assert known_port("smtps", table) == "465"
    assert known_port("submission", table) == "587"
    assert known_port("imap", table) is None


def test_options_end_at_the_first_non_option_as_with_getopt() -> None:
    text = "mine unix - n n - - pipe -oa=b -v flags=R argv=/bin/x -o q=r\n"
    (service,) = parse_master_cf(text, "master.cf").services
    assert [(o.name, o.value) for o in service.overrides] == [("a", "b")]
    assert service.args == ("-o", "a=b", "-v", "flags=R", "argv=/bin/x", "-o", "q=r")


def test_fold_wraps_before_column_80_and_gives_each_override_a_line() -> None:
    text = (
        "scalemail-backend unix - n n - 2 pipe flags=R user=scalemail "
        "argv=/usr/lib/scalemail/bin/scalemail-store ${nexthop} ${user} ${extension}\n"
        "smtp inet n - n - - smtpd -oa=b -o { c = d e } -v -o x=y argv=z -o q=r\n"
    )
    first, second = parse_master_cf(text, "master.cf").services
    assert format_service(first, fold=True) == (
        "scalemail-backend unix - n       n       -       2       pipe flags=R\n"
        "    user=scalemail argv=/usr/lib/scalemail/bin/scalemail-store ${nexthop}\n"
        "    ${user} ${extension}"
    )
    assert format_service(second, fold=True) == (
        "smtp       inet  n       -       n       -       -       smtpd\n"
        "    -o a=b\n"
        "    -o {c=d e}\n"
        "    -v\n"
        "    -o x=y\n"
        "    argv=z -o q=r"
    )
