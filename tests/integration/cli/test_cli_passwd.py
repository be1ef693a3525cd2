"""``mailseal passwd``: adding, changing and removing SASL users in smtpd_sasl_passwd_file.

The first tests run the sub-command's ``run()`` in this process through a small
argparse harness; the last ones run the real ``mailseal -c DIR passwd`` command.
"""

import argparse
import io
import stat
import sys
from pathlib import Path

import pytest

from mailseal.cli import passwd
from mailseal.cli.report import CommandError
from mailseal.services.sasl.hashes import verify_password
from mailseal.services.sasl.passwd_file import PasswdEntry, PasswdFile
from mailseal.testing.process import run_mailseal


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "conf"
    directory.mkdir()
    (directory / "main.cf").write_text("smtpd_sasl_passwd_file = $config_directory/users\n")
    return directory


def run_in_process(
    monkeypatch: pytest.MonkeyPatch, directory: Path, *args: str, stdin: str = ""
) -> int:
    parser = argparse.ArgumentParser(prog="mailseal")
    passwd.register(parser.add_subparsers(dest="command", required=True))
    namespace = parser.parse_args(["passwd", *args])
    namespace.config_dir = str(directory)
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    status: int = namespace.handler(namespace)
    return status


def user_entry(path: Path, user: str) -> PasswdEntry:
    found = PasswdFile.load(str(path)).lookup(user)
    assert found is not None, user
    return found


def test_add_then_change_in_process(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], config_dir: Path
) -> None:
    users = config_dir / "users"
    assert run_in_process(monkeypatch, config_dir, "alice", stdin="first pw\n") == 0
    assert capsys.readouterr().out == "passwd: added alice\n"
    first = user_entry(users, "alice")
    assert verify_password(first.password, "first pw")
    assert first.scram is not None
    assert first.scram.matches("first pw")
    assert stat.S_IMODE(users.stat().st_mode) == 0o600

    assert run_in_process(monkeypatch, config_dir, "alice", stdin="second pw\r\n") == 0
    out = capsys.readouterr().out
    assert out == "passwd: changed alice\n"
    second = user_entry(users, "alice")
    assert verify_password(second.password, "second pw")
    assert not verify_password(second.password, "first pw")
    assert second.scram is not None
    assert second.scram.salt != first.scram.salt  # a new random salt
    assert "pw" not in out


def test_delete_and_unknown_user_in_process(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], config_dir: Path
) -> None:
    users = config_dir / "users"
    users.write_text("# keep me\nbob:{PLAIN}b\ncarol:{PLAIN}c\n")
    assert run_in_process(monkeypatch, config_dir, "-d", "bob") == 0
    assert capsys.readouterr().out == "passwd: removed bob\n"
    assert users.read_text() == "# keep me\ncarol:{PLAIN}c\n"
    with pytest.raises(CommandError) as caught:
        run_in_process(monkeypatch, config_dir, "-d", "bob")
    assert str(caught.value) == "mailseal: fatal: passwd: no such user: bob"


@pytest.mark.parametrize("stdin", ["", "\n", "\r\n"])
def test_empty_password_in_process(
    monkeypatch: pytest.MonkeyPatch, config_dir: Path, stdin: str
) -> None:
    with pytest.raises(CommandError) as caught:
        run_in_process(monkeypatch, config_dir, "alice", stdin=stdin)
    assert str(caught.value) == "mailseal: fatal: passwd: empty password"
    assert not (config_dir / "users").exists()


def test_bad_user_name_and_broken_file_in_process(
    monkeypatch: pytest.MonkeyPatch, config_dir: Path
) -> None:
    with pytest.raises(CommandError, match="user name must not contain ':'"):
        run_in_process(monkeypatch, config_dir, "a:b", stdin="pw\n")
    (config_dir / "users").write_text("ok:{PLAIN}x\nbroken\n")
    with pytest.raises(CommandError, match=r"users, line 2: no password field"):
        run_in_process(monkeypatch, config_dir, "alice", stdin="pw\n")
    assert (config_dir / "users").read_text() == "ok:{PLAIN}x\nbroken\n"


# -- the real command ------------------------------------------------------------------


def test_command_add_change_delete(tmp_path: Path) -> None:
    # No main.cf: smtpd_sasl_passwd_file is its default, $config_directory/sasl_passwd.
    directory = tmp_path / "conf"
    directory.mkdir()
    users = directory / "sasl_passwd"
    added = run_mailseal("-c", str(directory), "passwd", "alice", stdin="one\n")
    assert (added.returncode, added.stdout, added.stderr) == (0, "passwd: added alice\n", "")
    assert stat.S_IMODE(users.stat().st_mode) == 0o600
    assert verify_password(user_entry(users, "alice").password, "one")

    changed = run_mailseal("-c", str(directory), "passwd", "alice", stdin="two\n")
    assert (changed.returncode, changed.stdout) == (0, "passwd: changed alice\n")
    assert verify_password(user_entry(users, "alice").password, "two")
    assert stat.S_IMODE(users.stat().st_mode) == 0o600

    removed = run_mailseal("-c", str(directory), "passwd", "-d", "alice")
    assert (removed.returncode, removed.stdout) == (0, "passwd: removed alice\n")
    assert PasswdFile.load(str(users)).lookup("alice") is None
    assert sorted(p.name for p in directory.iterdir()) == ["sasl_passwd"]  # no temp files


def test_command_empty_password(config_dir: Path) -> None:
    result = run_mailseal("-c", str(config_dir), "passwd", "alice", stdin="")
    assert result.returncode != 0
    assert result.stderr == "mailseal: fatal: passwd: empty password\n"
    assert not (config_dir / "users").exists()


def test_command_unknown_user(config_dir: Path) -> None:
    (config_dir / "users").write_text("bob:{PLAIN}b\n")
    result = run_mailseal("-c", str(config_dir), "passwd", "-d", "alice")
    assert result.returncode != 0
    assert "passwd: no such user: alice" in result.stderr
    assert (config_dir / "users").read_text() == "bob:{PLAIN}b\n"


def test_command_never_prints_the_password(config_dir: Path) -> None:
    secret = "Unique-Secret-4242"
    result = run_mailseal("-c", str(config_dir), "passwd", "alice", stdin=secret + "\n")
    assert result.returncode == 0, result.stderr
    assert secret not in result.stdout + result.stderr
    assert secret not in (config_dir / "users").read_text()
