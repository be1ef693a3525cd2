"""``mailseal init`` writes a usable configuration directory; ``check`` inspects certificates."""

import datetime
import os
import stat
from pathlib import Path

from cryptography import x509

from mailseal.cli.check import check_directory
from mailseal.config.loader import load_config
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
    assert stat.S_IMODE((directory / "queue").stat().st_mode) == 0o700


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
    assert result.stdout == f"check: {directory}: configuration is usable\n"


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
