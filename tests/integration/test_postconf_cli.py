"""``mailseal postconf`` as a real command: reading, editing, master.cf views, warnings."""

import shutil
from pathlib import Path

from mailseal.testing.process import run_mailseal

SEED = Path(__file__).parents[1] / "golden" / "seed"


def seed_copy(tmp_path: Path) -> Path:
    shutil.copytree(SEED, tmp_path / "c", ignore=shutil.ignore_patterns("*.ref"))
    return tmp_path / "c"


def test_named_parameters_values_and_expansion(tmp_path: Path) -> None:
    c = seed_copy(tmp_path)
    (c / "main.cf").write_text((c / "main.cf").read_text() + "myhostname = mx.example.org\n")
    result = run_mailseal("-c", str(c), "postconf", "smtpd_tls_security_level", "smtpd_banner")
    assert result.stdout == (
        "smtpd_tls_security_level = may\nsmtpd_banner = $myhostname ESMTP $mail_name\n"
    )
    result = run_mailseal("-c", str(c), "postconf", "-x", "-h", "smtpd_banner", "mydomain")
    assert result.stdout == "mx.example.org ESMTP mailseal\nexample.org\n"


def test_unknown_parameter_warns_like_postfix(tmp_path: Path) -> None:
    c = seed_copy(tmp_path)
    result = run_mailseal("-c", str(c), "postconf", "no_such_parameter")
    assert result.stderr == "postconf: warning: no_such_parameter: unknown parameter\n"
    assert result.stdout == ""
    assert result.returncode == 0


def test_unused_parameter_in_main_cf_is_a_warning_with_line(tmp_path: Path) -> None:
    c = seed_copy(tmp_path)
    text = (c / "main.cf").read_text()
    (c / "main.cf").write_text(text + "smtpd_tls_securty_level = may\n")
    line = len(text.splitlines()) + 1
    result = run_mailseal("-c", str(c), "postconf", "-n")
    assert result.returncode == 0
    assert result.stderr == (
        f"postconf: warning: {c}/main.cf, line {line}: unused parameter: "
        "smtpd_tls_securty_level=may\n"
    )
    assert "smtpd_tls_securty_level = may\n" in result.stdout


def test_referenced_user_parameter_is_not_unused(tmp_path: Path) -> None:
    c = seed_copy(tmp_path)
    with (c / "main.cf").open("a") as main:
        main.write("mua_client_restrictions = permit_sasl_authenticated, reject\n")
    with (c / "master.cf").open("a") as master:
        master.write("submissions inet n - n - - smtpd\n")
        master.write("  -o smtpd_client_restrictions=$mua_client_restrictions\n")
    result = run_mailseal("-c", str(c), "postconf", "-n")
    assert result.stderr == ""
    result = run_mailseal("-c", str(c), "postconf", "-P", "submissions/inet")
    assert result.stdout == (
        "submissions/inet/smtpd_client_restrictions = $mua_client_restrictions\n"
    )


def test_edit_keeps_comments_and_is_seen_by_the_next_read(tmp_path: Path) -> None:
    c = seed_copy(tmp_path)
    before = (c / "main.cf").read_text()
    result = run_mailseal(
        "-c",
        str(c),
        "postconf",
        "-e",
        "smtpd_tls_security_level = encrypt",
        "relayhost=[smart]:587",
    )
    assert result.returncode == 0, result.stderr
    after = (c / "main.cf").read_text()
    assert after.count("#") == before.count("#")
    assert after.endswith("relayhost = [smart]:587\n")
    assert "smtpd_tls_security_level = encrypt\n" in after
    assert "smtpd_tls_security_level = may" not in after
    result = run_mailseal("-c", str(c), "postconf", "-h", "smtpd_tls_security_level", "relayhost")
    assert result.stdout == "encrypt\n[smart]:587\n"


def test_edit_warns_when_the_new_value_is_unusable(tmp_path: Path) -> None:
    c = seed_copy(tmp_path)
    result = run_mailseal("-c", str(c), "postconf", "-e", "smtpd_tls_loglevel = lots")
    assert result.returncode == 0
    assert 'invalid smtpd_tls_loglevel value "lots": expected a whole number' in result.stderr


def test_edit_rejects_text_without_equals(tmp_path: Path) -> None:
    c = seed_copy(tmp_path)
    result = run_mailseal("-c", str(c), "postconf", "-e", "bad")
    assert result.returncode == 1
    assert result.stderr == "postconf: fatal: missing '=' after attribute name: \"bad\"\n"


def test_remove_parameter(tmp_path: Path) -> None:
    c = seed_copy(tmp_path)
    result = run_mailseal("-c", str(c), "postconf", "-X", "smtpd_tls_auth_only")
    assert result.returncode == 0
    result = run_mailseal("-c", str(c), "postconf", "-n", "smtpd_tls_auth_only")
    assert result.stdout == "smtpd_tls_auth_only = no\n"


def test_default_config_directory_from_environment(tmp_path: Path) -> None:
    c = seed_copy(tmp_path)
    import os
    import subprocess
    import sys

    env = dict(os.environ, MAILSEAL_CONFIG_DIR=str(c))
    result = subprocess.run(
        [sys.executable, "-m", "mailseal", "postconf", "-h", "smtp_tls_security_level"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert result.stdout == "may\n"


def test_postconf_d_names_this_host(tmp_path: Path) -> None:
    import socket

    result = run_mailseal("-c", str(tmp_path), "postconf", "-d", "config_directory", "myhostname")
    host = socket.gethostname()
    expected_host = host if "." in host else f"{host}.localdomain"
    assert result.stdout == f"config_directory = {tmp_path}\nmyhostname = {expected_host}\n"


def test_master_cf_override_edit_and_errors(tmp_path: Path) -> None:
    c = seed_copy(tmp_path)
    result = run_mailseal("-c", str(c), "postconf", "-Pe", "submission/inet/syslog_name=x/y")
    assert result.returncode == 0, result.stderr
    result = run_mailseal("-c", str(c), "postconf", "-P", "submission/inet/syslog_name")
    assert result.stdout == "submission/inet/syslog_name = x/y\n"
    result = run_mailseal("-c", str(c), "postconf", "-Pe", "submission/inet/smtpd_banner=a b")
    assert result.returncode == 1
    assert result.stderr == "postconf: fatal: -Pe does not accept whitespace in parameter value\n"
    result = run_mailseal("-c", str(c), "postconf", "-Pe", "submission/smtpd_banner=a")
    assert result.returncode == 1
    assert "requires service_name/type/parameter=value" in result.stderr
    result = run_mailseal("-c", str(c), "postconf", "-Me", "smtps/inet=smtps inet n")
    assert result.returncode == 1
    assert result.stderr == "postconf: fatal: invalid master.cf entry: bad field count\n"


def test_master_cf_service_edits(tmp_path: Path) -> None:
    c = seed_copy(tmp_path)
    entry = "smtps/inet=smtps inet n - n - - smtpd -o smtpd_tls_wrappermode=yes"
    assert run_mailseal("-c", str(c), "postconf", "-Me", entry).returncode == 0
    result = run_mailseal("-c", str(c), "postconf", "-M", "smtps/inet")
    assert result.stdout == (
        "smtps      inet  n       -       n       -       -       "
        "smtpd -o smtpd_tls_wrappermode=yes\n"
    )
    assert run_mailseal("-c", str(c), "postconf", "-M#", "smtps/inet").returncode == 0
    assert "#smtps      inet" in (c / "master.cf").read_text()
    result = run_mailseal("-c", str(c), "postconf", "-M", "smtps/inet")
    assert result.stdout == ""


def test_c_option_also_after_the_subcommand_as_in_postfix(tmp_path: Path) -> None:
    c = seed_copy(tmp_path)
    result = run_mailseal("postconf", "-c", str(c), "-h", "smtpd_tls_security_level")
    assert (result.returncode, result.stdout) == (0, "may\n")
