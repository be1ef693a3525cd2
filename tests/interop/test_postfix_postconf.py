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


@pytest.mark.parametrize("option", ["-n", "-M", "-P", "-Px"])
def test_seed_config_prints_as_postfix_prints_it(tmp_path: Path, option: str) -> None:
    directory = tmp_path / "seed"
    shutil.copytree(SEED, directory, ignore=shutil.ignore_patterns("*.ref"))
    assert ours(directory, option) == postfix(directory, option)


@pytest.mark.parametrize("main", ["main.cf.dist", "main.cf.debian", "main.cf.tls"])
@pytest.mark.parametrize("option", ["-n", "-M", "-P", "-Px", "-Ph"])
def test_stock_debian_files_print_as_postfix_prints_them(
    tmp_path: Path, main: str, option: str
) -> None:
    directory = stock_config(tmp_path, main)
    assert ours(directory, option) == postfix(directory, option)


def test_seed_expanded_values_agree_once_paths_agree(tmp_path: Path) -> None:
    directory = tmp_path / "seed"
    shutil.copytree(SEED, directory, ignore=shutil.ignore_patterns("*.ref"))
    # data_directory defaults differ on purpose (/var/lib/mailseal); pin it for both.
    with (directory / "main.cf").open("a") as main:
        main.write("data_directory = /var/lib/postfix\n")
    assert ours(directory, "-nx") == postfix(directory, "-nx")


def test_seed_submission_section_expanded_values_agree(tmp_path: Path) -> None:
    directory = tmp_path / "seed"
    shutil.copytree(SEED, directory, ignore=shutil.ignore_patterns("*.ref"))
    names = ["smtpd_tls_protocols", "smtp_tls_mandatory_protocols", "smtpd_tls_exclude_ciphers"]
    assert ours(directory, "-x", *names) == postfix(directory, "-x", *names)


# Entries with comment and blank lines between and after their continuation lines.
COMMENTED_MASTER_CF = Path(__file__).parents[1] / "golden" / "masteredit" / "commented-master.cf"

EDIT_SEQUENCES = {
    "comments": [
        ["-MX", "a/unix"],
        ["-M#", "b/unix"],
        ["-Me", "c/unix=c unix - - n - - smtp"],
        ["-Pe", "d/unix/x=2"],
        ["-MX", "nosuch/unix"],
        ["-Pe", "nosuch/unix/x=1"],
    ],
    "seed": [
        [
            "-Pe",
            "submission/inet/smtpd_tls_security_level=may",
            "submission/inet/syslog_name=postfix/submission",
            "smtp/inet/smtpd_banner=hello",
        ],
        ["-PX", "submission/inet/smtpd_etrn_restrictions"],
        ["-Me", "smtps/inet=smtps inet n - n - - smtpd -o smtpd_tls_wrappermode=yes"],
        ["-Me", "smtp/inet=smtp  inet n - y - 5 smtpd -oa=b -o { c = d e } -v argv=z -o q=r"],
        ["-Pe", "smtp/inet/c=x"],
        ["-MX", "smtps/inet"],
        ["-M#", "smtp/inet"],
    ],
    "stock": [
        ["-Pe", "relay/unix/syslog_name=mailseal/relay", "maildrop/unix/a=b"],
        [
            "-Me",
            "submission/inet=submission inet n - y - - smtpd "
            "-o syslog_name=postfix/submission -o smtpd_tls_security_level=encrypt",
        ],
        ["-M#", "pickup/unix"],
        ["-MX", "uucp/unix"],
        ["-PX", "relay/unix/syslog_name"],
    ],
}


@pytest.mark.parametrize("case", sorted(EDIT_SEQUENCES))
def test_master_cf_edits_write_what_postfix_writes(tmp_path: Path, case: str) -> None:
    copies = []
    for who in ("postfix", "mailseal"):
        directory = tmp_path / who
        if case == "seed":
            shutil.copytree(SEED, directory, ignore=shutil.ignore_patterns("*.ref"))
        elif case == "comments":
            directory.mkdir()
            (directory / "main.cf").write_text("")
            shutil.copy(COMMENTED_MASTER_CF, directory / "master.cf")
        else:
            directory.mkdir()
            shutil.copy(STOCK / "main.cf.debian", directory / "main.cf")
            shutil.copy(STOCK / "master.cf.dist", directory / "master.cf")
        copies.append(directory)
    theirs, mine = copies
    for step in EDIT_SEQUENCES[case]:
        subprocess.run([POSTCONF, "-c", str(theirs), *step], capture_output=True, check=True)
        result = run_mailseal("-c", str(mine), "postconf", *step)
        assert result.returncode == 0, result.stderr
        assert (mine / "master.cf").read_text() == (theirs / "master.cf").read_text(), step


def test_folded_services_print_as_postfix_prints_them(tmp_path: Path) -> None:
    directory = stock_config(tmp_path, "main.cf.debian")
    assert ours(directory, "-Mf") == postfix(directory, "-Mf")
