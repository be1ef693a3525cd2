"""newaliases / postalias round trips: aliases(5) source -> index -> local(8) alias expansion."""

from pathlib import Path

from sendmail_support import sendmail, tag, wait_message

from mailseal.testing.process import run_mailseal
from mailseal.testing.server import MailsealProcess, make_instance

ALIASES = """\
# aliases(5) for the test
team: postmaster@example.test
Sales:
  postmaster@example.test
broken line
: nobody
"quoted name": postmaster@example.test
"""


def make(tmp_path: Path) -> tuple[Path, Path]:
    directory = tmp_path / "mailseal"
    aliases = directory / "aliases"
    # Not myorigin = example.test: bare names go to $myhostname, a local domain,
    # where alias_maps apply.
    make_instance(
        directory,
        f"alias_maps = hash:{directory}/aliases\nalias_database = hash:{directory}/aliases\n",
    )
    aliases.write_text(ALIASES)
    return directory, aliases


def test_newaliases_builds_the_index_with_postfix_warnings(tmp_path: Path) -> None:
    directory, aliases = make(tmp_path)
    result = run_mailseal("-c", str(directory), "newaliases")
    assert result.returncode == 0
    assert result.stderr.splitlines() == [
        f"postalias: warning: {aliases}, line 5: need name:value pair",
        f"postalias: warning: {aliases}, line 6: need name:value pair",
    ]
    assert Path(f"{aliases}.db").is_file()
    query = run_mailseal("-c", str(directory), "postalias", "-q", "SALES", f"hash:{aliases}")
    assert (query.returncode, query.stdout) == (0, "postmaster@example.test\n")
    missing = run_mailseal("-c", str(directory), "postalias", "-q", "nobody", f"hash:{aliases}")
    assert (missing.returncode, missing.stdout) == (1, "")
    listing = run_mailseal("-c", str(directory), "postalias", "-s", str(aliases))
    assert "quoted name:\tpostmaster@example.test\n" in listing.stdout


def test_mail_to_an_alias_lands_in_the_target_maildir(tmp_path: Path) -> None:
    directory, _ = make(tmp_path)
    assert run_mailseal("-c", str(directory), "newaliases").returncode == 0
    with MailsealProcess(directory) as process:
        subject = tag()
        # A virtual sender: should anything bounce, the notice stays in the test's Maildirs.
        result = sendmail(
            directory,
            "-f",
            "postmaster@example.test",
            "team",
            stdin=f"Subject: {subject}\n\nto the team\n".encode(),
        )
        assert result.returncode == 0
        message = wait_message(process, subject)
        assert message["X-Original-To"] == "team@mail.example.test"
        assert message["Delivered-To"] == "postmaster@example.test"
        assert message.get_payload() == "to the team\n"


def test_sendmail_bi_rebuilds_alias_database(tmp_path: Path) -> None:
    directory, aliases = make(tmp_path)
    with aliases.open("a") as source:
        source.write("helpdesk: postmaster@example.test\n")
    rebuilt = sendmail(directory, "-bi")
    assert rebuilt.returncode == 0
    assert b"line 5: need name:value pair" in rebuilt.stderr
    query = run_mailseal("-c", str(directory), "postalias", "-q", "helpdesk", str(aliases))
    assert (query.returncode, query.stdout) == (0, "postmaster@example.test\n")
    # -oA names another database, as sendmail(1) documents
    other = directory / "other-aliases"
    other.write_text("x: y\n")
    assert sendmail(directory, f"-oAhash:{other}", "-bi").returncode == 0
    assert Path(f"{other}.db").is_file()


def test_postalias_on_a_missing_file_is_fatal(tmp_path: Path) -> None:
    result = run_mailseal("postalias", str(tmp_path / "nonexistent"))
    assert result.returncode == 1
    assert (
        result.stderr
        == f"postalias: fatal: open {tmp_path}/nonexistent: No such file or directory\n"
    )
