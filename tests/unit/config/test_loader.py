"""Loading a directory: per-service Configs, service_name, unused-parameter warnings."""

from pathlib import Path

from mailseal.config.loader import load_config

MASTER = """\
smtp      inet  n       -       y       -       -       smtpd
relay     unix  -       -       n       -       -       smtp
        -o syslog_name=postfix/$service_name
submission inet n       -       n       -       -       smtpd
  -o smtpd_tls_security_level=encrypt
  -o smtpd_client_restrictions=$mua_client_restrictions
"""


def directory(tmp_path: Path, main: str) -> str:
    (tmp_path / "main.cf").write_text(main)
    (tmp_path / "master.cf").write_text(MASTER)
    return str(tmp_path)


def test_each_service_sees_its_own_service_name(tmp_path: Path) -> None:
    loaded = load_config(directory(tmp_path, "syslog_name = mailseal\n"), "mail.example.com")
    relay = loaded.master.find("relay/unix")
    smtp = loaded.master.find("smtp/inet")
    assert relay is not None and smtp is not None
    assert loaded.service_config(relay).syslog_name == "postfix/relay"
    assert loaded.service_config(smtp).service_name == "smtp"
    assert loaded.service_config(smtp).syslog_name == "mailseal"
    assert loaded.base.service_name == ""


def test_smtpd_services_in_file_order_with_overrides(tmp_path: Path) -> None:
    main = "mua_client_restrictions = permit_sasl_authenticated, reject\n"
    loaded = load_config(directory(tmp_path, main), "mail.example.com")
    services = [(s.key, c.smtpd_tls_security_level) for s, c in loaded.smtpd_services()]
    assert services == [("smtp/inet", ""), ("submission/inet", "encrypt")]
    submission = loaded.master.find("submission")
    assert submission is not None
    assert loaded.service_config(submission).smtpd_client_restrictions == (
        "permit_sasl_authenticated",
        "reject",
    )
    assert loaded.warnings == ()


def test_unused_parameters_are_warned_about_but_transport_settings_are_not(
    tmp_path: Path,
) -> None:
    main = "submission_destination_rate_delay = 1s\nsmtpd_tls_securitylevel = may\n"
    loaded = load_config(directory(tmp_path, main), "mail.example.com")
    assert [str(w) for w in loaded.warnings] == [
        f"{tmp_path}/main.cf, line 2: unused parameter: smtpd_tls_securitylevel=may"
    ]
