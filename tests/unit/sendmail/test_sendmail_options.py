"""sendmail's command line read as Postfix's sendmail.c reads it."""

import pytest

from mailseal.services.pickup_options import Mode, UsageError, notify_mask, parse_options


def test_recipients_follow_the_options_and_stop_option_parsing() -> None:
    options = parse_options(["-oi", "-t", "a@example.test", "-f", "x"])
    assert options.mode is Mode.ENQUEUE
    assert options.extract
    assert not options.dot_ends_input
    # no permutation (getopt "+"): "-f x" after a recipient is two more recipients
    assert options.recipients == ("a@example.test", "-f", "x")
    assert options.sender is None


@pytest.mark.parametrize(
    ("argv", "sender"),
    [
        (["-fjoe@example.test"], "joe@example.test"),
        (["-f", "joe@example.test"], "joe@example.test"),
        (["-r", "old@example.test"], "old@example.test"),
        (["-f", ""], ""),
        (["-tfjoe"], "joe"),  # flags and a glued argument in one word
    ],
)
def test_sender_forms(argv: list[str], sender: str) -> None:
    assert parse_options([*argv, "rcpt"]).sender == sender


def test_double_dash_ends_options() -> None:
    assert parse_options(["-i", "--", "-not-an-option"]).recipients == ("-not-an-option",)


@pytest.mark.parametrize(
    ("argv", "mode"),
    [
        (["-bs"], Mode.USER),
        (["-bp"], Mode.MAILQ),
        (["-bi"], Mode.NEWALIAS),
        (["-I"], Mode.NEWALIAS),
        (["-bm"], Mode.ENQUEUE),
        (["-bd"], Mode.DAEMON),
        (["-bh"], Mode.IGNORE),
        (["-q"], Mode.FLUSHQ),
    ],
)
def test_modes(argv: list[str], mode: Mode) -> None:
    assert parse_options(argv).mode is mode


def test_flush_one_site() -> None:
    assert parse_options(["-qRexample.test"]).flush_site == "example.test"


def test_queue_interval_is_accepted_and_means_nothing() -> None:
    options = parse_options(["-q30m"])
    assert options.queue_interval
    assert options.mode is Mode.ENQUEUE


@pytest.mark.parametrize(
    "argv",
    [
        ["-odq", "-oem", "-v", "-m", "-U", "-x", "-c", "-G", "-Am", "-h", "17", "-L", "x"],
        ["-O", "Opt=1", "-R", "hdrs", "-p", "smtp", "-e", "x", "-o7"],
    ],
)
def test_legacy_options_are_ignored(argv: list[str]) -> None:
    options = parse_options([*argv, "rcpt@example.test"])
    assert options.recipients == ("rcpt@example.test",)
    assert options.dot_ends_input  # -od/-oe are not -oi
    assert options.warnings == ()


def test_dsn_and_body_options() -> None:
    options = parse_options(["-N", "delay,Success", "-V", "env-1", "-B", "8BITMIME", "r"])
    assert options.notify == "SUCCESS,DELAY"
    assert options.envid == "env-1"
    assert options.body == "8BITMIME"


@pytest.mark.parametrize(
    ("text", "mask"),
    [
        ("never", "NEVER"),
        ("failure", "FAILURE"),
        ("success, delay, failure", "SUCCESS,FAILURE,DELAY"),
        ("never,success", None),
        ("sometimes", None),
        ("", None),
    ],
)
def test_notify_mask(text: str, mask: str | None) -> None:
    assert notify_mask(text) == mask


def test_bad_values_are_ignored_with_postfix_warnings() -> None:
    options = parse_options(["-N", "bogus", "-V", "x" * 101, "r"])
    assert options.notify == ""
    assert options.envid == ""
    assert options.warnings == (
        "bad -N option value -- ignored",
        "too long -V option value -- ignored",
    )
    assert parse_options(["-V", "tab\there", "r"]).warnings == (
        "bad syntax in -V option value -- ignored",
    )


@pytest.mark.parametrize(
    ("argv", "message", "detail"),
    [
        (["-z"], "usage: sendmail [options]", "invalid option -- 'z'"),
        (["-f"], "usage: sendmail [options]", "option requires an argument -- 'f'"),
        (["-n"], "-n option not supported", ""),
        (["-B", "binary"], "-B option needs 8BITMIME or 7BIT", ""),
        (["-X", "/tmp/log"], "unsupported: -X/", ""),
        (["-XV"], "unsupported: -XV", ""),
        (["-bv"], "unsupported: -bv", ""),
        (["-qIABC"], "-qI is not implemented", ""),
        (["-qR"], "specify: -qRsitename", ""),
        (["-qRexample.test", "rcpt"], "flush site requires no recipient", ""),
        (["-qRexample.test", "-bp"], "-qR can be used only in delivery mode", ""),
        (["-oA"], "-oA requires pathname", ""),
        (["-t", "-bp"], "-t can be used only in delivery mode", ""),
    ],
)
def test_usage_errors(argv: list[str], message: str, detail: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_options(argv)
    assert caught.value.message == message
    assert caught.value.detail == detail


def test_old_verp_form_of_v_is_rewritten_like_postfix() -> None:
    # Postfix 2.2's "-V xy" meant VERP; Postfix turns it into -XV (which we refuse).
    with pytest.raises(UsageError, match="unsupported: -XV"):
        parse_options(["-V", "+=", "r"])


def test_config_directory_option() -> None:
    assert parse_options(["-C", "/etc/x/main.cf"]).config_dir == "/etc/x"
    assert parse_options(["-C/etc/y"]).config_dir == "/etc/y"
    assert parse_options(["-oA/etc/aliases"]).alias_database == "/etc/aliases"


def test_default_mode_by_program_name() -> None:
    assert parse_options([], Mode.MAILQ).mode is Mode.MAILQ
