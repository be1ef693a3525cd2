"""Side by side with Postfix's own postconf: same files in, same output out.

Debian's Postfix (installed by ./dev test from debian-packages.txt) reads the
seed configuration and the stock Debian main.cf/master.cf; mailseal's
``postconf -n``, ``-M`` and ``-P`` must print exactly what Postfix prints.
"""

import shutil
import subprocess
from pathlib import Path

import pytest

from mailseal.testing.process import run_mailseal

pytestmark = pytest.mark.interop

POSTCONF = "/usr/sbin/postconf"
STOCK = Path("/usr/share/postfix")
SEED = Path(__file__).parents[1] / "golden" / "seed"


@pytest.fixture(autouse=True)
def _need_postfix() -> None:
    if not Path(POSTCONF).exists():
        pytest.fail("Postfix's postconf is not installed: run ./dev test (it installs postfix)")


def postfix(config: Path, *args: str) -> str:
    result = subprocess.run(
        [POSTCONF, "-c", str(config), *args], capture_output=True, text=True, check=True
    )
    # Postfix adds config_directory to -n when -c is given; mailseal treats it as a default.
    return "".join(
        line + "\n"
        for line in result.stdout.splitlines()
        if not line.startswith("config_directory")
    )


def ours(config: Path, *args: str) -> str:
    result = run_mailseal("-c", str(config), "postconf", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def stock_config(tmp_path: Path, main: str) -> Path:
    directory = tmp_path / "stock"
    directory.mkdir()
    shutil.copy(STOCK / main, directory / "main.cf")
    shutil.copy(STOCK / "master.cf.dist", directory / "master.cf")
    return directory


@pytest.mark.parametrize("option", ["-n", "-M", "-P"])
def test_seed_config_prints_as_postfix_prints_it(tmp_path: Path, option: str) -> None:
    directory = tmp_path / "seed"
    shutil.copytree(SEED, directory, ignore=shutil.ignore_patterns("*.ref"))
    assert ours(directory, option) == postfix(directory, option)


@pytest.mark.parametrize("main", ["main.cf.dist", "main.cf.debian", "main.cf.tls"])
@pytest.mark.parametrize("option", ["-n", "-M", "-P"])
def test_stock_debian_files_print_as_postfix_prints_them(
    tmp_path: Path, main: str, option: str
) -> None:
    directory = stock_config(tmp_path, main)
    assert ours(directory, option) == postfix(directory, option)


def test_seed_submission_section_expanded_values_agree(tmp_path: Path) -> None:
    directory = tmp_path / "seed"
    shutil.copytree(SEED, directory, ignore=shutil.ignore_patterns("*.ref"))
    names = ["smtpd_tls_protocols", "smtp_tls_mandatory_protocols", "smtpd_tls_exclude_ciphers"]
    assert ours(directory, "-x", *names) == postfix(directory, "-x", *names)
