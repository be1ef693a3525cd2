"""Broken configurations are tests too: one folder per case, with the exact error expected.

Each folder under bad_configs/ holds main.cf (and usually master.cf) and
``expected-error``: the error lines ``mailseal check`` must print, with
``$DIR`` standing for the configuration directory. ``check`` must exit 1; the
same configuration must make ``postconf`` fail too when the error is in the
files themselves (not in what they refer to).
"""

import shutil
from pathlib import Path

import pytest

from mailseal.testing.process import run_mailseal

CASES = sorted(p for p in (Path(__file__).parent / "bad_configs").iterdir() if p.is_dir())


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_config_is_reported_with_file_and_line(case: Path, tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(case, config)
    result = run_mailseal("-c", str(config), "check")
    expected = (case / "expected-error").read_text().replace("$DIR", str(config)).splitlines()
    errors = [line for line in result.stdout.splitlines() if line.startswith("check: error:")]
    assert errors == expected, result.stdout + result.stderr
    assert result.returncode == 1
    assert "Traceback" not in result.stderr


def test_postconf_refuses_a_bad_value_with_exit_status_1(tmp_path: Path) -> None:
    shutil.copytree(Path(__file__).parent / "bad_configs" / "tls_level_maybe", tmp_path / "c")
    result = run_mailseal("-c", str(tmp_path / "c"), "postconf", "-n")
    assert result.returncode == 1
    assert result.stderr == (
        f"mailseal: fatal: {tmp_path}/c/main.cf, line 2: invalid smtpd_tls_security_level "
        'value "maybe": expected one of none, may, encrypt or empty\n'
    )
    assert result.stdout == ""
