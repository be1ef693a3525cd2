"""smtpd restriction lists and relay control, for the seed's services and beyond."""

import shutil
from pathlib import Path

import pytest

from mailseal.config.errors import ConfigError, Setting
from mailseal.config.facts import SystemFacts
from mailseal.config.loader import load_config
from mailseal.config.model import Config
from mailseal.services.addresses import Addressing
from mailseal.services.networks import my_networks
from mailseal.services.recipients import Recipients, Verdict
from mailseal.services.restrictions import ClientFacts, Note, Restrictions

SEED = Path(__file__).parents[2] / "golden" / "seed"

LOOPBACK = ClientFacts("localhost", "127.0.0.1", "client.example", None, tls_active=False)
STRANGER = ClientFacts("unknown", "192.0.2.1", "client.example", None, tls_active=False)
USER = ClientFacts("unknown", "192.0.2.1", "client.example", "bob", tls_active=True)

RELAY_DENIED = Verdict(454, "4.7.1", "<x@remote.example>: Relay access denied")
CLIENT_DENIED = Verdict(554, "5.7.1", "<unknown[192.0.2.1]>: Client host rejected: Access denied")


def build(config: Config) -> Restrictions:
    addressing = Addressing(config)
    return Restrictions(config, addressing, Recipients(config, addressing), my_networks(config))


def seed_services(tmp_path: Path) -> dict[str, Restrictions]:
    for name in ("main.cf", "master.cf"):
        shutil.copy(SEED / name, tmp_path / name)
    with (tmp_path / "main.cf").open("a") as main:
        main.write("alias_maps =\n")  # no /etc/aliases.db in a test
    loaded = load_config(str(tmp_path), "mail.example.com")
    return {service.name: build(config) for service, config in loaded.smtpd_services()}


@pytest.mark.parametrize(
    ("service", "client", "recipient", "expected"),
    [
        ("smtp", LOOPBACK, "x@remote.example", None),
        ("smtp", STRANGER, "x@remote.example", RELAY_DENIED),
        ("smtp", USER, "x@remote.example", None),
        ("smtp", STRANGER, "root@mail.example.com", None),
        (
            "smtp",
            STRANGER,
            "nobody-at-all@localhost",
            Verdict(
                550,
                "5.1.1",
                "<nobody-at-all@localhost>: Recipient address rejected: "
                "User unknown in local recipient table",
            ),
        ),
        ("smtp", STRANGER, "postmaster", None),
        ("submission", LOOPBACK, "x@remote.example", None),
        ("submission", STRANGER, "x@remote.example", CLIENT_DENIED),
        ("submission", STRANGER, "root@mail.example.com", CLIENT_DENIED),
        ("submission", USER, "x@remote.example", None),
    ],
)
def test_seed_services_relay_control(
    tmp_path: Path, service: str, client: ClientFacts, recipient: str, expected: Verdict | None
) -> None:
    restrictions = seed_services(tmp_path)[service]
    assert restrictions.at_rcpt(client, "sender@example.org", recipient) == expected
    # smtpd_delay_reject = yes: nothing is refused before RCPT TO.
    assert restrictions.at_connect(client) is None
    assert restrictions.at_mail(client, "sender@example.org") is None


def make_config(tmp_path: Path, **settings: str) -> Config:
    base = {"mydestination": "$myhostname, localhost", "alias_maps": ""}
    facts = SystemFacts(hostname="mail.example.com", config_directory=str(tmp_path))
    return Config({k: Setting(v) for k, v in (base | settings).items()}, facts)


def restrictions_with(tmp_path: Path, access: str = "", **settings: str) -> Restrictions:
    (tmp_path / "access").write_text(access)
    return build(make_config(tmp_path, **settings))


def table(tmp_path: Path) -> str:
    return f"texthash:{tmp_path / 'access'}"


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (
            "REJECT",
            Verdict(554, "5.7.1", "<x@remote.example>: Recipient address rejected: Access denied"),
        ),
        (
            "REJECT go away",
            Verdict(554, "5.7.1", "<x@remote.example>: Recipient address rejected: go away"),
        ),
        (
            "DEFER",
            Verdict(450, "4.7.1", "<x@remote.example>: Recipient address rejected: Access denied"),
        ),
        (
            "550 5.1.1 no such person",
            Verdict(550, "5.1.1", "<x@remote.example>: Recipient address rejected: no such person"),
        ),
        ("421 busy", Verdict(421, "4.7.1", "<x@remote.example>: Recipient address rejected: busy")),
        ("OK", None),
        ("RELAY", None),
        ("1700000000", None),
        ("DUNNO", RELAY_DENIED),
        ("permit_mynetworks", RELAY_DENIED),
        (
            "reject_unauth_destination",
            Verdict(554, "5.7.1", "<x@remote.example>: Relay access denied"),
        ),
    ],
)
def test_recipient_access_results(tmp_path: Path, entry: str, expected: Verdict | None) -> None:
    relay = f"check_recipient_access {table(tmp_path)}, defer_unauth_destination"
    restrictions = restrictions_with(
        tmp_path, f"x@remote.example {entry}\n", smtpd_relay_restrictions=relay
    )
    assert restrictions.at_rcpt(STRANGER, "s@example.org", "x@remote.example") == expected


@pytest.mark.parametrize(
    ("key", "name", "addr"),
    [
        ("192.0.2.1", "unknown", "192.0.2.1"),
        ("192.0.2", "unknown", "192.0.2.1"),
        ("192", "unknown", "192.0.2.1"),
        ("host.example.org", "host.example.org", "198.51.100.1"),
        ("example.org", "host.example.org", "198.51.100.1"),  # parent style is the default
        ("2001:db8", "unknown", "2001:db8::1"),
    ],
)
def test_client_access_key_forms(tmp_path: Path, key: str, name: str, addr: str) -> None:
    restrictions = restrictions_with(
        tmp_path, f"{key} REJECT\n", smtpd_client_restrictions=table(tmp_path)
    )
    client = ClientFacts(name, addr, None, None, tls_active=False)
    verdict = restrictions.at_rcpt(client, "s@example.org", "root@localhost")
    assert verdict == Verdict(
        554, "5.7.1", f"<{name}[{addr}]>: Client host rejected: Access denied"
    )


def test_sender_access_keys_and_null_sender(tmp_path: Path) -> None:
    restrictions = restrictions_with(
        tmp_path,
        "spammer@ REJECT\n.bad.example REJECT from a bad place\n<> 550 no bounces here\n",
        smtpd_sender_restrictions=f"check_sender_access {table(tmp_path)}",
        parent_domain_matches_subdomains="relay_domains",
    )

    def verdict(sender: str) -> Verdict | None:
        return restrictions.at_rcpt(LOOPBACK, sender, "root@localhost")

    assert verdict("spammer@anywhere.example") == Verdict(
        554, "5.7.1", "<spammer@anywhere.example>: Sender address rejected: Access denied"
    )
    assert verdict("a@mx.bad.example") == Verdict(
        554, "5.7.1", "<a@mx.bad.example>: Sender address rejected: from a bad place"
    )
    assert verdict("a@bad.example") is None  # ".bad.example" is for subdomains only
    assert verdict("") == Verdict(550, "5.7.1", "<>: Sender address rejected: no bounces here")


def test_restriction_classes_and_helo_checks(tmp_path: Path) -> None:
    restrictions = restrictions_with(
        tmp_path,
        "strict@localhost strict\n",
        smtpd_restriction_classes="strict",
        strict="reject_non_fqdn_helo_hostname, reject_invalid_helo_hostname",
        smtpd_recipient_restrictions=f"check_recipient_access {table(tmp_path)}, permit",
        smtpd_relay_restrictions="reject_unauth_destination",
        smtpd_reject_unlisted_recipient="no",
    )

    def verdict(helo: str) -> Verdict | None:
        client = ClientFacts("unknown", "192.0.2.1", helo, None, tls_active=False)
        return restrictions.at_rcpt(client, "s@example.org", "strict@localhost")

    assert verdict("mx.example.org") is None
    assert verdict("[192.0.2.1]") is None
    assert verdict("localhost") == Verdict(
        504, "5.5.2", "<localhost>: Helo command rejected: need fully-qualified hostname"
    )
    assert verdict("[300.1.1.1]") == Verdict(
        501, "5.5.2", "<[300.1.1.1]>: Helo command rejected: invalid ip address"
    )
    # The class applies only to the recipient the access table names.
    client = ClientFacts("unknown", "192.0.2.1", "localhost", None, tls_active=False)
    assert restrictions.at_rcpt(client, "s@example.org", "root@localhost") is None


def test_warn_if_reject_and_access_warn_become_notes(tmp_path: Path) -> None:
    restrictions = restrictions_with(
        tmp_path,
        "192.0.2.1 WARN suspicious client\n",
        smtpd_client_restrictions=f"check_client_access {table(tmp_path)}, warn_if_reject, reject",
    )
    outcome = restrictions.evaluate_rcpt(STRANGER, "s@example.org", "root@localhost")
    assert outcome.verdict is None
    assert outcome.notes == (
        Note("warn", "suspicious client"),
        Note(
            "reject_warning",
            "554 5.7.1 <unknown[192.0.2.1]>: Client host rejected: Access denied",
        ),
    )


def test_defer_if_permit_turns_a_later_permit_into_450(tmp_path: Path) -> None:
    restrictions = restrictions_with(
        tmp_path,
        "192.0.2.1 DEFER_IF_PERMIT not now\n",
        smtpd_client_restrictions=table(tmp_path),
    )
    assert restrictions.at_rcpt(STRANGER, "s@example.org", "root@localhost") == Verdict(
        450, "4.7.1", "<unknown[192.0.2.1]>: Client host rejected: not now"
    )
    # A reject still wins.
    assert restrictions.at_rcpt(STRANGER, "s@example.org", "x@remote.example") == RELAY_DENIED


def test_unknown_restrictions_and_lookup_tables_in_results_are_server_errors(
    tmp_path: Path,
) -> None:
    restrictions = restrictions_with(
        tmp_path,
        "192.0.2.1 hash:/etc/postfix/other\n",
        smtpd_client_restrictions=f"reject_spammers, {table(tmp_path)}",
    )
    error = Verdict(451, "4.3.5", "Server configuration error")
    outcome = restrictions.evaluate_rcpt(STRANGER, "s@example.org", "root@localhost")
    assert outcome.verdict == error
    assert outcome.notes == (Note("warning", 'unknown smtpd restriction: "reject_spammers"'),)
    nested = restrictions_with(
        tmp_path, "192.0.2.1 hash:/x\n", smtpd_client_restrictions=table(tmp_path)
    )
    outcome = nested.evaluate_rcpt(STRANGER, "s@example.org", "root@localhost")
    assert outcome.verdict == error
    assert "has entry with lookup table" in outcome.notes[0].text


def test_missing_access_table_defers(tmp_path: Path) -> None:
    restrictions = restrictions_with(
        tmp_path, smtpd_client_restrictions=f"check_client_access hash:{tmp_path / 'nope'}"
    )
    assert any("is unavailable" in str(w) for w in restrictions.warnings)
    assert restrictions.at_rcpt(STRANGER, "s@example.org", "root@localhost") == Verdict(
        451, "4.3.0", "<unknown[192.0.2.1]>: Temporary lookup failure"
    )


def test_relay_control_is_required_and_classes_need_definitions(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match="specify at least one working instance of: "
        "reject_unauth_destination, defer_unauth_destination, reject, defer, "
        "defer_if_permit or check_relay_domains",
    ):
        restrictions_with(
            tmp_path, smtpd_relay_restrictions="permit, reject", smtpd_recipient_restrictions=""
        )
    with pytest.raises(ConfigError, match="restriction class `strict' needs a definition"):
        restrictions_with(tmp_path, smtpd_restriction_classes="strict")


def test_delay_reject_no_rejects_early(tmp_path: Path) -> None:
    restrictions = restrictions_with(
        tmp_path,
        smtpd_delay_reject="no",
        smtpd_client_restrictions="permit_mynetworks, reject",
        smtpd_sender_restrictions="reject_non_fqdn_sender",
    )
    assert restrictions.at_connect(STRANGER) == CLIENT_DENIED
    assert restrictions.at_connect(LOOPBACK) is None
    assert restrictions.at_mail(LOOPBACK, "user") == Verdict(
        504, "5.5.2", "<user>: Sender address rejected: need fully-qualified address"
    )
    assert restrictions.at_mail(LOOPBACK, "user@example.org") is None


def test_relay_before_recipient_order(tmp_path: Path) -> None:
    settings = {
        "smtpd_recipient_restrictions": "reject_non_fqdn_recipient",
        "smtpd_relay_restrictions": "reject_unauth_destination",
    }
    relay_first = restrictions_with(tmp_path, **settings)
    assert relay_first.at_rcpt(STRANGER, "s@example.org", "x@remote") == Verdict(
        554, "5.7.1", "<x@remote>: Relay access denied"
    )
    recipient_first = restrictions_with(
        tmp_path, smtpd_relay_before_recipient_restrictions="no", **settings
    )
    assert recipient_first.at_rcpt(STRANGER, "s@example.org", "x@remote") == Verdict(
        504, "5.5.2", "<x@remote>: Recipient address rejected: need fully-qualified address"
    )


def test_tls_and_sasl_restrictions(tmp_path: Path) -> None:
    restrictions = restrictions_with(
        tmp_path,
        smtpd_relay_restrictions="reject_plaintext_session, permit_tls_all_clientcerts, reject",
    )
    assert restrictions.at_rcpt(STRANGER, "s@example.org", "root@localhost") == Verdict(
        450, "4.7.1", "Session encryption is required"
    )
    trusted = ClientFacts("unknown", "192.0.2.1", None, None, tls_active=True, tls_trust="Trusted")
    assert restrictions.at_rcpt(trusted, "s@example.org", "x@remote.example") is None
    untrusted = ClientFacts(
        "unknown", "192.0.2.1", None, None, tls_active=True, tls_trust="Untrusted"
    )
    assert restrictions.at_rcpt(untrusted, "s@example.org", "x@remote.example") == Verdict(
        554, "5.7.1", "<x@remote.example>: Recipient address rejected: Access denied"
    )


def test_data_restrictions_and_soft_bounce(tmp_path: Path) -> None:
    restrictions = restrictions_with(tmp_path, smtpd_data_restrictions="reject", soft_bounce="yes")
    assert restrictions.at_data(LOOPBACK, "s@example.org", ["a@x", "b@y"]) == Verdict(
        454, "4.7.1", "<DATA>: Data command rejected: Access denied"
    )
    assert restrictions.at_end_of_data(LOOPBACK, "s@example.org", ["a@x"]) is None


def test_reject_unlisted_sender(tmp_path: Path) -> None:
    restrictions = restrictions_with(tmp_path, smtpd_reject_unlisted_sender="yes")
    assert restrictions.at_rcpt(LOOPBACK, "ghost-user@localhost", "root@localhost") == Verdict(
        550,
        "5.1.0",
        "<ghost-user@localhost>: Sender address rejected: User unknown in local recipient table",
    )
    assert restrictions.at_rcpt(LOOPBACK, "root@localhost", "root@localhost") is None


@pytest.mark.parametrize(
    ("restriction", "client", "sender", "expected"),
    [
        # An authenticated user may send as the addresses the map gives it.
        ("reject_sender_login_mismatch", USER, "bob@example.org", None),
        ("reject_sender_login_mismatch", USER, "team@example.org", None),
        ("reject_sender_login_mismatch", USER, "anything@shared.example", None),
        (
            "reject_sender_login_mismatch",
            USER,
            "alice@example.org",
            Verdict(
                553, "5.7.1", "<alice@example.org>: Sender address rejected: not owned by user bob"
            ),
        ),
        (
            "reject_sender_login_mismatch",
            USER,
            "nobody@elsewhere.example",
            Verdict(
                553,
                "5.7.1",
                "<nobody@elsewhere.example>: Sender address rejected: not owned by user bob",
            ),
        ),
        # ... and an unauthenticated client may not use an owned address at all.
        (
            "reject_sender_login_mismatch",
            STRANGER,
            "bob@example.org",
            Verdict(553, "5.7.1", "<bob@example.org>: Sender address rejected: not logged in"),
        ),
        ("reject_sender_login_mismatch", STRANGER, "nobody@elsewhere.example", None),
        ("reject_sender_login_mismatch", USER, "", None),
        ("reject_authenticated_sender_login_mismatch", STRANGER, "bob@example.org", None),
        ("reject_unauthenticated_sender_login_mismatch", USER, "alice@example.org", None),
        ("reject_known_sender_login_mismatch", USER, "nobody@elsewhere.example", None),
        (
            "reject_known_sender_login_mismatch",
            USER,
            "alice@example.org",
            Verdict(
                553, "5.7.1", "<alice@example.org>: Sender address rejected: not owned by user bob"
            ),
        ),
    ],
)
def test_sender_login_maps(
    tmp_path: Path, restriction: str, client: ClientFacts, sender: str, expected: Verdict | None
) -> None:
    logins = tmp_path / "logins"
    logins.write_text(
        "bob@example.org bob\nteam@example.org alice, BOB\nalice@example.org alice\n"
        "@shared.example bob alice\n"
    )
    config = make_config(
        tmp_path,
        smtpd_sender_login_maps=f"texthash:{logins}",
        smtpd_sender_restrictions=restriction,
    )
    # smtpd_delay_reject = yes: the sender restrictions run at RCPT TO.
    assert build(config).at_rcpt(client, sender, "postmaster@mail.example.com") == expected
