"""``mailseal init`` writes a usable configuration directory; ``check`` inspects certificates.

And SASL: init writes an empty users file for its AUTH services; check reads it
(parses, has users, mode, password schemes), looks for Dovecot's socket, and
points out AUTH offered where passwords may travel in plaintext.
"""

import datetime
import os
import socket
import stat
from pathlib import Path

from cryptography import x509

from mailseal.cli.check import check_directory
from mailseal.config.loader import load_config
from mailseal.services.sasl.passwd_file import PasswdFile
from mailseal.testing.process import run_mailseal
from mailseal.tls.certs import make_self_signed

HOST = "mail.example.test"


def init(tmp_path: Path, *extra: str) -> Path:
    directory = tmp_path / "conf"
    result = run_mailseal("init", str(directory), "--hostname", HOST, *extra)
    assert result.returncode == 0, result.stderr
    return directory


def test_init_writes_a_complete_directory_and_nothing_outside(tmp_path: Path) -> None:
    directory = init(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["conf"]
    for name in ("main.cf", "master.cf", "vmailbox", "tls/server.crt", "tls/server.key"):
        assert (directory / name).is_file(), name
    for name in ("queue", "data", "log", "mail/example.test"):
        assert (directory / name).is_dir(), name
    assert stat.S_IMODE((directory / "tls/server.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((directory / "queue").stat().st_mode) == 0o711


def test_init_certificate_names_the_host_in_subject_alt_name(tmp_path: Path) -> None:
    directory = init(tmp_path)
    cert = x509.load_pem_x509_certificate((directory / "tls/server.crt").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [HOST]
    assert cert.public_key().key_size == 2048  # type: ignore[union-attr]


def test_init_config_loads_with_three_loopback_services(tmp_path: Path) -> None:
    directory = init(tmp_path, "--smtp-port", "3525", "--listen", "127.0.0.2")
    loaded = load_config(str(directory), "ignored.example")
    assert loaded.warnings == ()
    assert loaded.base.myhostname == HOST
    assert loaded.base.inet_interfaces == ("127.0.0.2",)
    services = {s.name: c for s, c in loaded.smtpd_services()}
    assert sorted(services) == ["2465", "2587", "3525"]
    assert services["2587"].smtpd_tls_security_level == "encrypt"
    assert services["2465"].smtpd_tls_wrappermode is True
    assert services["3525"].smtpd_tls_security_level == "may"


def test_init_config_passes_check(tmp_path: Path) -> None:
    directory = init(tmp_path)
    result = run_mailseal("-c", str(directory), "check")
    assert result.returncode == 0, result.stdout
    assert result.stdout == (
        f"check: warning: smtpd_sasl_passwd_file {directory}/sasl_passwd has no SASL users "
        f"yet: add one with mailseal -c {directory} passwd USER\n"
        f"check: {directory}: configuration is usable\n"
    )
    add = run_mailseal("-c", str(directory), "passwd", "alice", stdin="s3cret pass\n")
    assert add.returncode == 0, add.stderr
    result = run_mailseal("-c", str(directory), "check")
    assert result.stdout == f"check: {directory}: configuration is usable\n"


def test_init_writes_an_empty_private_users_file(tmp_path: Path) -> None:
    directory = init(tmp_path)
    users = directory / "sasl_passwd"
    assert stat.S_IMODE(users.stat().st_mode) == 0o600
    lines = users.read_text().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("# ")
    assert lines[0].endswith(f"add one with: mailseal -c {directory} passwd USER")
    assert PasswdFile.load(str(users)).entries() == ()
    assert load_config(str(directory), HOST).base.smtpd_sasl_passwd_file == str(users)


def test_init_refuses_to_overwrite_a_users_file(tmp_path: Path) -> None:
    directory = tmp_path / "conf"
    directory.mkdir()
    (directory / "sasl_passwd").write_text("alice:{PLAIN}kept\n")
    result = run_mailseal("init", str(directory), "--hostname", HOST)
    assert result.returncode == 1
    assert result.stderr == (
        f"init: fatal: {directory}/sasl_passwd exists; not overwriting an existing configuration\n"
    )
    assert (directory / "sasl_passwd").read_text() == "alice:{PLAIN}kept\n"
    assert not (directory / "main.cf").exists()


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    directory = init(tmp_path)
    before = (directory / "main.cf").read_text()
    result = run_mailseal("init", str(directory))
    assert result.returncode == 1
    assert result.stderr == (
        f"init: fatal: {directory}/main.cf exists; not overwriting an existing configuration\n"
    )
    assert (directory / "main.cf").read_text() == before


def test_init_uses_the_c_directory_when_none_is_given(tmp_path: Path) -> None:
    result = run_mailseal("-c", str(tmp_path / "viac"), "init", "--hostname", HOST)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "viac" / "main.cf").is_file()


def test_check_finds_mismatched_key_loose_mode_and_expiry(tmp_path: Path) -> None:
    directory = init(tmp_path)
    make_self_signed("other.example", tmp_path / "other.crt", tmp_path / "other.key")
    os.replace(tmp_path / "other.key", directory / "tls/server.key")
    (directory / "tls/server.key").chmod(0o644)
    later = datetime.datetime(2200, 1, 1, tzinfo=datetime.UTC)
    messages = [f"{f.severity}: {f.message}" for f in check_directory(str(directory), HOST, later)]
    crt, key = directory / "tls/server.crt", directory / "tls/server.key"
    assert (
        f"error: smtpd_tls_cert_file: private key {key} does not match the certificate in {crt}"
        in messages
    )
    assert any(
        m.startswith(f"error: smtpd_tls_cert_file: certificate in {crt} expired") for m in messages
    )
    assert (
        f"warning: smtpd_tls_cert_file: private key file {key} is readable by group or others "
        "(mode 0644); use chmod 600"
    ) in messages


def test_check_reads_chain_files_with_key_first(tmp_path: Path) -> None:
    directory = init(tmp_path)
    chain = directory / "tls/chain.pem"
    chain.write_bytes(
        (directory / "tls/server.key").read_bytes() + (directory / "tls/server.crt").read_bytes()
    )
    chain.chmod(0o600)
    with (directory / "main.cf").open("a") as main:
        main.write(f"smtpd_tls_chain_files = {chain}\n")
    now = datetime.datetime.now(datetime.UTC)
    assert [f for f in check_directory(str(directory), HOST, now) if f.severity == "error"] == []


def test_check_resolves_service_names_like_postfix(tmp_path: Path) -> None:
    directory = init(tmp_path)
    with (directory / "master.cf").open("a") as master:
        # known_tcp_ports knows these (Postfix 3.6+); /etc/services is the fallback.
        master.write("smtp inet n - n - - smtpd\n")
        master.write("submission inet n - n - - smtpd\n")
        master.write("127.0.0.1:smtps inet n - n - - smtpd\n")
        master.write("[::1]:submissions inet n - n - - smtpd\n")
        master.write("bogus-name inet n - n - - smtpd\n")
    now = datetime.datetime.now(datetime.UTC)
    errors = [str(f) for f in check_directory(str(directory), HOST, now) if f.severity == "error"]
    line = len((directory / "master.cf").read_text().splitlines())
    assert errors == [
        f"check: error: {directory}/master.cf, line {line}: unknown service: bogus-name/tcp"
    ]


def test_unknown_override_in_master_cf_is_an_unused_parameter(tmp_path: Path) -> None:
    directory = init(tmp_path)
    with (directory / "master.cf").open("a") as master:
        master.write("2526 inet n - n - - smtpd\n  -o smtpd_tls_securitylevel=encrypt\n")
    result = run_mailseal("-c", str(directory), "postconf", "-n")
    line = len((directory / "master.cf").read_text().splitlines()) - 1
    assert result.stderr == (
        f"postconf: warning: {directory}/master.cf, line {line}: "
        "unused parameter: smtpd_tls_securitylevel=encrypt\n"
    )


def test_check_warns_when_the_certificate_does_not_name_myhostname(tmp_path: Path) -> None:
    directory = init(tmp_path)
    result = run_mailseal("-c", str(directory), "postconf", "-e", "myhostname = mx.other.example")
    assert result.returncode == 0, result.stderr
    now = datetime.datetime.now(datetime.UTC)
    warnings = [f.message for f in check_directory(str(directory), HOST, now)]
    assert (
        f"smtpd_tls_cert_file: the certificate is for {HOST}, not myhostname mx.other.example; "
        "senders that verify names (MTA-STS, secure) will refuse it"
    ) in warnings


def sasl_findings(directory: Path) -> list[str]:
    """check's findings that are about SASL, as ``severity: message``."""
    now = datetime.datetime.now(datetime.UTC)
    return [
        f"{f.severity}: {f.message}"
        for f in check_directory(str(directory), HOST, now)
        if "sasl" in f.message.lower() or "passwd" in f.message or "plaintext" in f.message
    ]


def test_check_reads_the_users_file_mode_and_schemes(tmp_path: Path) -> None:
    directory = init(tmp_path)
    users = directory / "sasl_passwd"
    # A real argon2id line (mailseal passwd), then schemes a login could not be checked with.
    add = run_mailseal("-c", str(directory), "passwd", "alice", stdin="s3cret pass\n")
    assert add.returncode == 0, add.stderr
    with users.open("a") as out:
        out.write("bob:{MD5-CRYPT}$1$abc$xyz\ncarol:{ARGON2ID\ndave:{PLAIN}\n")
        out.write("erin:$6$salt$hash\nfrank:{sha512-crypt}$6$salt$hash\n")
    users.chmod(0o640)  # group read: a file shared with Dovecot, no warning for that
    assert sasl_findings(directory) == [
        f"warning: {users}, line 3: user bob: unsupported password scheme {{MD5-CRYPT}}; "
        "this user cannot log in",
        f"warning: {users}, line 4: user carol: password scheme has no closing '}}'; "
        "this user cannot log in",
        f"warning: {users}, line 5: user dave: empty {{PLAIN}} password; this user cannot log in",
    ]
    users.chmod(0o644)
    assert sasl_findings(directory)[0] == (
        f"warning: smtpd_sasl_passwd_file {users} is readable by others (mode 0644); "
        "use chmod 600 (or 640 for a file shared with Dovecot)"
    )


def test_check_reports_a_broken_or_missing_users_file(tmp_path: Path) -> None:
    directory = init(tmp_path)
    users = directory / "sasl_passwd"
    users.write_text("alice:{PLAIN}one\nalice:{PLAIN}two\n")
    result = run_mailseal("-c", str(directory), "check")
    assert result.returncode == 1
    # One line although two services (submission, submissions) read the same file.
    assert result.stdout == (
        f"check: error: {users}, line 2: user alice exists more than once (first on line 1)\n"
    )
    users.unlink()
    assert sasl_findings(directory) == [
        f"warning: smtpd_sasl_passwd_file {users} does not exist: no SASL users yet: "
        f"add one with mailseal -c {directory} passwd USER"
    ]


def test_check_looks_for_the_dovecot_socket(tmp_path: Path) -> None:
    directory = init(tmp_path)
    with (directory / "main.cf").open("a") as main:
        main.write("smtpd_sasl_type = dovecot\nsmtpd_sasl_path = private/auth\n")
    path = directory / "queue" / "private" / "auth"
    line = len((directory / "main.cf").read_text().splitlines())
    now = datetime.datetime.now(datetime.UTC)
    missing = [str(f) for f in check_directory(str(directory), HOST, now) if "Dovecot" in str(f)]
    assert missing == [
        f"check: warning: {directory}/main.cf, line {line}: service {port}: smtpd_sasl_path: "
        f"Dovecot auth socket {path} does not exist (is Dovecot running?): "
        "logins fail until it does"
        for port in (2587, 2465)
    ]
    path.parent.mkdir()
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        assert sasl_findings(directory) == []  # and the users file is not Dovecot's business


def test_check_warns_about_auth_that_may_travel_in_plaintext(tmp_path: Path) -> None:
    directory = init(tmp_path)
    with (directory / "master.cf").open("a") as master:
        master.write("2526 inet n - n - - smtpd\n  -o smtpd_sasl_auth_enable=yes\n")
        master.write("  -o smtpd_tls_auth_only=no\n")
        # Required TLS, implicit TLS, or AUTH only after STARTTLS: nothing to say.
        master.write("2527 inet n - n - - smtpd\n  -o smtpd_sasl_auth_enable=yes\n")
        master.write("  -o smtpd_tls_auth_only=no\n  -o smtpd_tls_security_level=encrypt\n")
        master.write("2528 inet n - n - - smtpd\n  -o smtpd_sasl_auth_enable=yes\n")
    users = run_mailseal("-c", str(directory), "passwd", "alice", stdin="s3cret pass\n")
    assert users.returncode == 0, users.stderr
    assert sasl_findings(directory) == [
        "warning: service 2526: smtpd_sasl_auth_enable = yes at TLS level may without "
        "smtpd_tls_auth_only = yes: passwords may cross the network in plaintext"
    ]
