"""Golden files for ``postconf -d`` and for the seed tutorial's configuration.

The seed's main.cf and master.cf (tests/golden/seed/) load unchanged;
``postconf -n`` shows every setting back as written, ``-M`` and ``-P`` show the
submission section and its overrides, and ``-d`` lists every parameter's
default (with fixed facts, so the file does not depend on this host's name).
"""

from pathlib import Path

from mailseal.cli.postconf import (
    defaults_listing,
    override_listing,
    parameter_listing,
    service_listing,
)
from mailseal.config.facts import SystemFacts
from mailseal.config.loader import load_config
from mailseal.config.model import Config
from mailseal.testing.golden import assert_golden

GOLDEN = Path(__file__).parents[2] / "golden"
SEED = GOLDEN / "seed"
FACTS = SystemFacts(hostname="mail.example.com", config_directory="/etc/mailseal")


def text(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


def test_postconf_d_matches_golden() -> None:
    assert_golden(text(defaults_listing(Config({}, FACTS), [])), GOLDEN / "postconf-d.ref")


def test_seed_postconf_n_matches_golden() -> None:
    loaded = load_config(str(SEED), "mail.example.com")
    assert loaded.warnings == ()
    assert_golden(text(parameter_listing(loaded, [], non_default=True)), SEED / "postconf-n.ref")


def test_seed_postconf_m_and_p_match_golden() -> None:
    loaded = load_config(str(SEED), "mail.example.com")
    assert_golden(text(service_listing(loaded)), SEED / "postconf-M.ref")
    assert_golden(text(override_listing(loaded)), SEED / "postconf-P.ref")


def test_seed_submission_service_config_layers_overrides() -> None:
    loaded = load_config(str(SEED), "mail.example.com")
    submission = loaded.master.find("submission/inet")
    assert submission is not None
    config = loaded.service_config(submission)
    assert config.smtpd_tls_security_level == "encrypt"
    assert config.smtpd_sasl_auth_enable is True
    assert config.smtpd_tls_auth_only is True  # from main.cf, not overridden
    assert loaded.base.smtpd_tls_security_level == "may"
    assert loaded.base.smtpd_sasl_auth_enable is False
    protocols = config.smtpd_tls_mandatory_protocols
    assert protocols.excluded == frozenset({"SSLv2", "SSLv3", "TLSv1", "TLSv1.1"})
    assert config.smtpd_tls_exclude_ciphers[:3] == ("MD5", "DES", "ADH")
    assert config.expanded("smtpd_tls_session_cache_database") == (
        f"btree:{loaded.base.expanded('data_directory')}/smtpd_scache"
    )


def test_postconf_dx_expands_defaults() -> None:
    lines = defaults_listing(Config({}, FACTS), ["smtpd_banner", "relay_domains"], expanded=True)
    assert lines == ["smtpd_banner = mail.example.com ESMTP mailseal", "relay_domains ="]
