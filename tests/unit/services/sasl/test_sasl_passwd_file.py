"""The SASL users file: Dovecot passwd-file lines, rewriting, atomic saves, live re-reading."""

import os
import stat
from pathlib import Path

import pytest

from mailseal.services.sasl.hashes import verify_password
from mailseal.services.sasl.passwd_file import (
    PasswdEntry,
    PasswdFile,
    PasswdFileError,
    PasswdStore,
    check_user_name,
)
from mailseal.smtp.sasl.credentials import ScramCredentials

SALT = bytes(range(16))
SCRAM = ScramCredentials.derive("pencil", SALT).to_text()

DOVECOT_FILE = f"""\
# users for example.test
alice:{{PLAIN}}wonderland:1000:1000::/home/alice::userdb_quota_rule=*:storage=1G

bob:{SCRAM}
:ignored line starting with a colon
carol:{{PLAIN}}x::::::nopassword=n mailseal_scram={SCRAM} allow_nets=127.0.0.1
"""


def parsed(text: str = DOVECOT_FILE) -> PasswdFile:
    return PasswdFile.parse(text, "/etc/mailseal/sasl_passwd")


def entry(users: PasswdFile, user: str) -> PasswdEntry:
    found = users.lookup(user)
    assert found is not None, user
    return found


def test_parse_reads_users_and_keeps_other_fields_verbatim() -> None:
    users = parsed()
    alice = entry(users, "alice")
    assert alice.password == "{PLAIN}wonderland"
    assert alice.fields == (
        "1000",
        "1000",
        "",
        "/home/alice",
        "",
        "userdb_quota_rule=*",
        "storage=1G",
    )
    assert alice.scram is None
    assert [e.user for e in users.entries()] == ["alice", "bob", "carol"]


def test_a_user_line_without_password_field_is_an_error_with_file_and_line() -> None:
    with pytest.raises(PasswdFileError) as caught:
        PasswdFile.parse("# one\nalice:{PLAIN}x\ndave\n", "/etc/sasl_passwd")
    assert str(caught.value).startswith("/etc/sasl_passwd, line 3: no password field")


def test_scram_password_field_is_the_scram_keys() -> None:
    bob = entry(parsed(), "bob")
    assert bob.scram == ScramCredentials.from_text(SCRAM)
    assert bob.scram.matches("pencil")


def test_scram_extra_field_is_read_among_other_extra_fields() -> None:
    carol = entry(parsed(), "carol")
    assert carol.scram is not None
    assert carol.scram.matches("pencil")


def test_parse_render_round_trip_keeps_comments_blank_and_odd_lines() -> None:
    assert parsed().render() == DOVECOT_FILE


def test_crlf_lines_are_read() -> None:
    users = parsed("alice:{PLAIN}x\r\nbob:{PLAIN}y\r\n")
    assert entry(users, "alice").password == "{PLAIN}x"


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        (
            "a:{PLAIN}x\nb:{PLAIN}y\na:{PLAIN}z\n",
            3,
            "user a exists more than once (first on line 1)",
        ),
        ("# c\n\nu:{SCRAM-SHA-256}4096,abc\n", 3, "user u: SCRAM credentials must be"),
        ("u:{PLAIN}x::::::mailseal_scram=junk\n", 1, "user u: SCRAM credentials must start"),
    ],
)
def test_errors_carry_file_and_line(text: str, line: int, what: str) -> None:
    with pytest.raises(PasswdFileError) as caught:
        PasswdFile.parse(text, "/f")
    assert str(caught.value).startswith(f"/f, line {line}: {what}")


def test_lookup_exact_then_lower_case() -> None:
    users = parsed("alice:{PLAIN}lower\nBob:{PLAIN}upper\n")
    assert entry(users, "ALICE").password == "{PLAIN}lower"
    assert entry(users, "Bob").password == "{PLAIN}upper"
    assert users.lookup("bob") is None
    assert users.lookup("nobody") is None


def test_with_password_appends_a_new_user_with_argon2id_and_scram() -> None:
    users = parsed().with_password("erin", "s3cret", SALT)
    erin = entry(users, "erin")
    assert verify_password(erin.password, "s3cret")
    assert erin.password.startswith("{ARGON2ID}$argon2id$")
    assert erin.scram == ScramCredentials.derive("s3cret", SALT)
    last = users.render().splitlines()[-1]
    assert last == f"erin:{erin.password}::::::mailseal_scram={erin.scram.to_text()}"
    assert users.render().startswith(DOVECOT_FILE)  # everything before is untouched


def test_with_password_replaces_in_place_keeping_fields_and_extras() -> None:
    users = parsed().with_password("carol", "new", SALT)
    lines = users.render().splitlines()
    carol = lines[5]
    assert carol.startswith("carol:{ARGON2ID}$argon2id$")
    extra = carol.split(":", 7)[7]
    assert extra.split() == [
        "nopassword=n",
        "allow_nets=127.0.0.1",
        f"mailseal_scram={ScramCredentials.derive('new', SALT).to_text()}",
    ]
    assert lines[:5] == DOVECOT_FILE.splitlines()[:5]
    assert len(lines) == 6


def test_with_password_on_a_dovecot_line_with_userdb_fields() -> None:
    users = parsed().with_password("alice", "rabbit", SALT)
    alice = entry(users, "alice")
    assert alice.fields[:5] == ("1000", "1000", "", "/home/alice", "")
    words = alice.fields[5].split()
    assert words[0] == "userdb_quota_rule=*:storage=1G"  # the ':' inside is kept
    assert len([e for e in users.entries() if e.user == "alice"]) == 1
    reparsed = PasswdFile.parse(users.render(), "/x")
    assert entry(reparsed, "alice").scram == ScramCredentials.derive("rabbit", SALT)


@pytest.mark.parametrize(
    "name", ["", "a:b", "a b", "a\tb", "a\x00b", "a\x7fb", "#alice", "a\u2028b"]
)
def test_bad_user_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="user name"):
        check_user_name(name)
    with pytest.raises(ValueError, match="user name"):
        parsed().with_password(name, "pw", SALT)


def test_good_user_names_are_accepted() -> None:
    for name in ("alice", "alice@example.test", "Ünïcode+tag@example.test"):
        check_user_name(name)


def test_without_removes_the_line_and_unknown_is_key_error() -> None:
    users = parsed().without("bob")
    assert users.lookup("bob") is None
    assert "bob:" not in users.render()
    assert users.render().startswith("# users for example.test\nalice:")
    with pytest.raises(KeyError):
        users.without("bob")


def test_without_is_exact() -> None:
    with pytest.raises(KeyError):
        parsed().without("ALICE")


def test_load_missing_file_is_empty(tmp_path: Path) -> None:
    users = PasswdFile.load(str(tmp_path / "absent"))
    assert users.entries() == ()
    assert users.render() == ""


def test_load_non_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "sasl_passwd"
    path.write_bytes(b"a:{PLAIN}x\nb:{PLAIN}\xff\n")
    with pytest.raises(PasswdFileError, match=r"sasl_passwd, line 2: not UTF-8"):
        PasswdFile.load(str(path))


def test_save_new_file_is_mode_0600_leaves_no_temp_files_and_round_trips(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sasl_passwd"
    users = parsed().with_password("erin", "pw", SALT)
    users.save(str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["sasl_passwd"]
    assert path.read_text() == users.render()
    assert entry(PasswdFile.load(str(path)), "erin").scram == ScramCredentials.derive("pw", SALT)


@pytest.mark.parametrize(
    ("old_mode", "new_mode"), [(0o600, 0o600), (0o644, 0o640), (0o666, 0o640), (0o400, 0o600)]
)
def test_save_keeps_at_most_group_read_of_an_existing_file(
    tmp_path: Path, old_mode: int, new_mode: int
) -> None:
    path = tmp_path / "sasl_passwd"
    path.write_text("old:{PLAIN}x\n")
    path.chmod(old_mode)
    parsed().save(str(path))
    assert stat.S_IMODE(path.stat().st_mode) == new_mode
    assert path.read_text() == DOVECOT_FILE


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's group to another needs root")
def test_save_keeps_owner_and_group_of_an_existing_file(tmp_path: Path) -> None:
    # A file shared with Dovecot is root:dovecot 0640; rewriting must not lock Dovecot out.
    path = tmp_path / "sasl_passwd"
    path.write_text("old:{PLAIN}x\n")
    os.chown(path, 4321, 8765)
    path.chmod(0o640)
    parsed().save(str(path))
    info = path.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (4321, 8765, 0o640)


def test_save_failure_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "sasl_passwd"
    path.mkdir()  # rename onto a directory fails
    with pytest.raises(OSError):
        parsed("a:{PLAIN}x\n").save(str(path))
    assert [p.name for p in tmp_path.iterdir()] == ["sasl_passwd"]


def touch_new(path: Path, text: str, tick: int) -> None:
    """Replace ``path`` with ``text``, forcing a distinct mtime (fast filesystems tie)."""
    path.write_text(text)
    os.utime(path, ns=(tick * 1_000_000_000, tick * 1_000_000_000))


def test_store_rereads_after_a_change(tmp_path: Path) -> None:
    path = tmp_path / "sasl_passwd"
    touch_new(path, "alice:{PLAIN}one\n", 1000)
    store = PasswdStore(str(path))
    assert entry_of(store, "alice").password == "{PLAIN}one"
    touch_new(path, "alice:{PLAIN}two\nbob:{PLAIN}b\n", 2000)
    assert entry_of(store, "alice").password == "{PLAIN}two"
    assert store.lookup("bob") is not None


def test_store_sees_a_same_size_change_by_mtime(tmp_path: Path) -> None:
    path = tmp_path / "sasl_passwd"
    touch_new(path, "alice:{PLAIN}one\n", 1000)
    store = PasswdStore(str(path))
    assert entry_of(store, "alice").password == "{PLAIN}one"
    touch_new(path, "alice:{PLAIN}two\n", 1001)
    assert entry_of(store, "alice").password == "{PLAIN}two"


def test_store_sees_an_atomic_save(tmp_path: Path) -> None:
    path = tmp_path / "sasl_passwd"
    store = PasswdStore(str(path))
    assert store.lookup("alice") is None  # no file yet: no users
    PasswdFile.load(str(path)).with_password("alice", "pw", SALT).save(str(path))
    assert entry_of(store, "alice").scram == ScramCredentials.derive("pw", SALT)
    path.unlink()
    assert store.lookup("alice") is None


def test_store_keeps_last_good_copy_and_reports_once(tmp_path: Path) -> None:
    path = tmp_path / "sasl_passwd"
    touch_new(path, "alice:{PLAIN}one\n", 1000)
    errors: list[PasswdFileError] = []
    store = PasswdStore(str(path), on_error=errors.append)
    assert entry_of(store, "alice").password == "{PLAIN}one"
    touch_new(path, "alice:{PLAIN}one\nbroken\n", 2000)
    assert entry_of(store, "alice").password == "{PLAIN}one"
    assert entry_of(store, "alice").password == "{PLAIN}one"
    assert [str(e) for e in errors] == [
        f"{path}, line 2: no password field (want user:{{SCHEME}}hash)"
    ]
    touch_new(path, "alice:{PLAIN}fixed\n", 3000)
    assert entry_of(store, "alice").password == "{PLAIN}fixed"


def test_store_raises_when_there_never_was_a_good_copy(tmp_path: Path) -> None:
    path = tmp_path / "sasl_passwd"
    touch_new(path, "broken\n", 1000)
    store = PasswdStore(str(path))
    for _ in range(2):
        with pytest.raises(PasswdFileError, match="line 1"):
            store.lookup("alice")
    touch_new(path, "alice:{PLAIN}ok\n", 2000)
    assert entry_of(store, "alice").password == "{PLAIN}ok"


def entry_of(store: PasswdStore, user: str) -> PasswdEntry:
    found = store.lookup(user)
    assert found is not None, user
    return found
