"""master.cf edits: only touched entries change, folded as Postfix writes them."""

from pathlib import Path

import pytest

from mailseal.config.errors import ConfigError
from mailseal.config.masteredit import OverrideChange, edit_entries, edit_overrides

TEXT = (Path(__file__).parents[2] / "golden" / "masteredit" / "commented-master.cf").read_text()


def test_remove_keeps_comment_and_blank_lines_of_the_entry() -> None:
    edited, warnings = edit_entries(TEXT, "master.cf", remove=["a/unix"])
    assert edited.startswith("# head comment\n# inner comment\n\nb unix")
    assert warnings == []


def test_comment_out_prefixes_only_entry_lines() -> None:
    edited, _ = edit_entries(TEXT, "master.cf", remove=["b/unix"], comment_out=True)
    assert "#b unix - - y - - smtp\n#  -o x=1\n# inner comment\n#  -o y=2\nc unix" in edited


def test_replace_writes_the_new_entry_first_then_the_comments() -> None:
    edited, _ = edit_entries(TEXT, "master.cf", replace={"c/unix": "c unix - - n - - smtp"})
    assert "c          unix  -       -       n       -       -       smtp\n# c inner\n\nd" in edited


def test_replace_of_an_unknown_service_appends_it() -> None:
    edited, _ = edit_entries(TEXT, "master.cf", replace={"new/inet": "2525 inet n - n - - smtpd"})
    assert edited.endswith(
        "z unix - - y - - smtp\n2525       inet  n       -       n       -       -       smtpd\n"
    )


def test_set_override_rewrites_after_the_comments_read_on_the_way() -> None:
    edited, _ = edit_overrides(TEXT, "master.cf", [OverrideChange("d/unix", "x", "2")])
    assert edited.endswith(
        "# trailing comment\n\n"
        "d          unix  -       -       y       -       -       smtp -v\n"
        "    -o x=2\n"
        "z unix - - y - - smtp\n"
    )


def test_add_and_remove_overrides_keep_the_others() -> None:
    changes = [
        OverrideChange("a/unix", "z", "3"),
        OverrideChange("a/unix", "x", None),
    ]
    edited, _ = edit_overrides(TEXT, "master.cf", changes)
    assert (
        "a          unix  -       -       y       -       -       smtp\n    -o y=2\n    -o z=3\n"
        in (edited)
    )


def test_unmatched_services_are_warnings() -> None:
    _, warnings = edit_overrides(TEXT, "master.cf", [OverrideChange("q/unix", "x", "1")])
    assert [str(w) for w in warnings] == ['unmatched service_name/type: "q/unix"']
    _, warnings = edit_entries(TEXT, "master.cf", remove=["q/unix"])
    assert [str(w) for w in warnings] == ['unmatched request: "q/unix"']


def test_a_bad_new_entry_is_refused() -> None:
    with pytest.raises(ConfigError, match="bad field count"):
        edit_entries(TEXT, "master.cf", replace={"c/unix": "c unix -"})
