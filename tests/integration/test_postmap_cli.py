"""``mailseal postmap``: building, querying and listing tables, compared with Postfix's postmap."""

import io
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mailseal.cli.main import main
from mailseal.testing.process import run_mailseal

REAL_POSTMAP = "/usr/sbin/postmap"

TEXT = """\
# aliases
Foo  bar
foo  duplicate
key  value with  spaces
  continued here
novalue
Info@Example.COM  alice@example.net
"""

REGEXP = """\
/^(.*)-outgoing@(.*)$/  550 Use ${1}@${2} instead
/^abc$/i  CASE
/^abc$/   NOCASE
if !/^owner-/
/^(.+)-list@/  list $1
endif
!/^neg/  NEGATED
"""

PCRE = """\
/^(?<user>[^@]+)\\+[^@]*@example\\.com$/  DETAIL $1
/\\Qa.b\\E/  QUOTED
/^Mixed$/i  EXACT-CASE
/^mixed$/  ANY-CASE
/^\\d{3}-x$/  DIGITS
if /@example\\.org$/
/^postmaster@/  PM-ORG
endif
"""

CIDR = """\
192.0.2.1        OK
192.0.2.0/24     REJECT
[2001:db8::1]    OK6
2001:db8::/32    REJECT6
!198.51.100.0/24 OUTSIDE
"""

Result = tuple[int, str, str]


@pytest.fixture
def in_process(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> Callable[..., Result]:
    """Run the postmap sub-command in this process: (status, stdout, stderr)."""

    def run(*args: str, stdin: str = "") -> Result:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        # No main.cf in the config directory: postmap uses the table's defaults.
        status = main(["-c", str(tmp_path / "no-config"), "postmap", *args])
        out = capsys.readouterr()
        return status, out.out, out.err

    return run


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory holding the sample tables, made the current directory."""
    (tmp_path / "aliases").write_text(TEXT)
    (tmp_path / "rules.regexp").write_text(REGEXP)
    (tmp_path / "clients.cidr").write_text(CIDR)
    (tmp_path / "rules.pcre").write_text(PCRE)
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- as a real command ---------------------------------------------------------


def test_build_then_query_hit_and_miss(workdir: Path) -> None:
    result = run_mailseal("postmap", "aliases")
    assert result.returncode == 0
    assert result.stdout == ""
    assert result.stderr == (
        'postmap: warning: aliases, line 3: duplicate entry: "foo"\n'
        "postmap: warning: aliases, line 6: "
        "expected format: key whitespace value -- ignoring this line\n"
    )
    assert (workdir / "aliases.db").exists()
    hit = run_mailseal("postmap", "-q", "FOO", "hash:aliases")
    assert (hit.returncode, hit.stdout, hit.stderr) == (0, "bar\n", "")
    miss = run_mailseal("postmap", "-q", "nobody", "hash:aliases")
    assert (miss.returncode, miss.stdout, miss.stderr) == (1, "", "")


def test_unknown_type_is_fatal(workdir: Path) -> None:
    result = run_mailseal("postmap", "-q", "x", "foo:aliases")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == "postmap: fatal: unsupported dictionary type: foo\n"


def test_query_keys_from_stdin(workdir: Path) -> None:
    result = run_mailseal("postmap", "-q", "-", "texthash:aliases", stdin="foo\nmissing\nKEY\n")
    assert result.returncode == 0
    assert result.stdout == "foo\tbar\nKEY\tvalue with  spaces  continued here\n"


# -- in process: the same behaviour without a child ---------------------------


def test_in_process_build_query_and_list(workdir: Path, in_process: Callable[..., Result]) -> None:
    status, out, err = in_process("hash:aliases")
    assert (status, out) == (0, "")
    assert 'duplicate entry: "foo"' in err
    assert in_process("-q", "Info@example.com", "aliases") == (0, "alice@example.net\n", "")
    assert in_process("-q", "nobody", "aliases") == (1, "", "")
    status, out, _ = in_process("-s", "hash:aliases")
    assert out == (
        "foo\tbar\nkey\tvalue with  spaces  continued here\ninfo@example.com\talice@example.net\n"
    )


def test_in_process_first_table_with_an_answer_wins(
    workdir: Path, in_process: Callable[..., Result]
) -> None:
    # Later tables are not even opened once an earlier one answers, as in postmap.
    assert in_process("-q", "foo", "texthash:aliases", "hash:missing")[:2] == (0, "bar\n")
    status, _, err = in_process("-q", "zzz", "texthash:aliases", "hash:missing")
    assert status == 1
    assert err.endswith("postmap: fatal: open database missing.db: No such file or directory\n")


def test_in_process_errors(workdir: Path, in_process: Callable[..., Result]) -> None:
    assert in_process("-q", "x", "foo:aliases") == (
        1,
        "",
        "postmap: fatal: unsupported dictionary type: foo\n",
    )
    status, _, err = in_process("texthash:aliases")
    assert status == 1
    assert "texthash does not support bulk-mode creation" in err
    status, _, err = in_process("-s", "regexp:rules.regexp")
    assert (status, err) == (
        1,
        "postmap: fatal: table regexp:rules.regexp: sequence operation is not supported\n",
    )
    assert in_process("nonexistent") == (
        1,
        "",
        "postmap: fatal: open nonexistent: No such file or directory\n",
    )


def test_in_process_delete(workdir: Path, in_process: Callable[..., Result]) -> None:
    in_process("aliases")
    assert in_process("-d", "FOO", "aliases")[0] == 0
    assert in_process("-d", "foo", "aliases")[0] == 1
    assert in_process("-q", "foo", "aliases") == (1, "", "")


def test_in_process_stdin_queries(workdir: Path, in_process: Callable[..., Result]) -> None:
    status, out, _ = in_process(
        "-q", "-", "cidr:clients.cidr", stdin="192.0.2.1\nfoo\n2001:db8::7\n"
    )
    assert (status, out) == (0, "192.0.2.1\tOK\n2001:db8::7\tREJECT6\n")
    assert in_process("-q", "-", "cidr:clients.cidr", stdin="foo\n")[0] == 1


# -- against the real thing ----------------------------------------------------

KEYS = {
    "texthash:aliases": ["foo", "FOO", "key", "novalue", "info@example.com", "missing"],
    "regexp:rules.regexp": [
        "foo-outgoing@Example.COM",
        "abc",
        "ABC",
        "dev-list@example.com",
        "owner-dev-list@example.com",
        "neg-thing",
        "other",
    ],
    "pcre:rules.pcre": [
        "alice+tag@example.com",
        "alice@example.com",
        "xa.by",
        "xaxby",
        "Mixed",
        "MIXED",
        "123-x",
        "postmaster@example.org",
        "postmaster@example.net",
    ],
    "cidr:clients.cidr": [
        "192.0.2.1",
        "192.0.2.99",
        "2001:db8::1",
        "2001:DB8::2",
        "198.51.100.7",
        "203.0.113.5",
        "::1",
        "[192.0.2.1]",
        "not-an-ip",
    ],
}


def real_postmap(*args: str, cwd: Path, stdin: str = "") -> tuple[int, str]:
    done = subprocess.run(
        [REAL_POSTMAP, *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout


@pytest.fixture
def _need_postmap() -> None:
    # CI installs Postfix (debian-packages.txt); a missing peer is a failure, not a skip.
    if not Path(REAL_POSTMAP).exists():
        pytest.fail("Postfix's postmap is not installed: run ./dev test")


@pytest.mark.interop
@pytest.mark.usefixtures("_need_postmap")
@pytest.mark.parametrize("table", sorted(KEYS))
def test_query_answers_match_postfix(
    workdir: Path, in_process: Callable[..., Result], table: str
) -> None:
    for key in KEYS[table]:
        status, out, _ = in_process("-q", key, table)
        assert (status, out) == real_postmap("-q", key, table, cwd=workdir), key
    stdin = "".join(f"{key}\n" for key in KEYS[table])
    status, out, _ = in_process("-q", "-", table, stdin=stdin)
    assert (status, out) == real_postmap("-q", "-", table, cwd=workdir, stdin=stdin)


@pytest.mark.interop
@pytest.mark.usefixtures("_need_postmap")
def test_hash_answers_match_postfix(
    workdir: Path, tmp_path_factory: pytest.TempPathFactory, in_process: Callable[..., Result]
) -> None:
    # Both write aliases.db, in different formats: give Postfix its own copy.
    theirs = tmp_path_factory.mktemp("postfix")
    shutil.copy(workdir / "aliases", theirs / "aliases")
    assert real_postmap("aliases", cwd=theirs)[0] == 0
    assert in_process("aliases")[0] == 0
    for key in KEYS["texthash:aliases"]:
        status, out, _ = in_process("-q", key, "hash:aliases")
        assert (status, out) == real_postmap("-q", key, "hash:aliases", cwd=theirs), key


def test_bare_file_name_uses_default_database_type_of_main_cf(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "main.cf").write_text("default_database_type = lmdb\n")
    (tmp_path / "access").write_text("example.com REJECT\n")
    result = run_mailseal("-c", str(config), "postmap", str(tmp_path / "access"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "access.lmdb").is_file()
    assert not (tmp_path / "access.db").exists()
    query = run_mailseal(
        "-c", str(config), "postmap", "-q", "example.com", f"lmdb:{tmp_path}/access"
    )
    assert query.stdout == "REJECT\n"
