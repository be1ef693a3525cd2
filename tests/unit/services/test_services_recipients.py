"""RCPT-time recipient validation (check_rcpt_maps) and queue-time expansion and routing."""

import pwd
from pathlib import Path

import pytest

from mailseal.config.errors import Setting
from mailseal.config.facts import SystemFacts
from mailseal.config.model import Config
from mailseal.services.addresses import Addressing
from mailseal.services.recipients import Destination, Recipients, Verdict

ROOT_HOME = Path(pwd.getpwnam("root").pw_dir)


def make_recipients(tmp_path: Path, files: dict[str, str], **settings: str) -> Recipients:
    """A mailseal-init-like configuration plus ``settings``; ``files`` are written first."""
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    base = {
        "mydestination": "$myhostname, localhost",
        "virtual_mailbox_domains": "example.net",
        "virtual_mailbox_base": str(tmp_path / "mail"),
        "virtual_mailbox_maps": f"texthash:{tmp_path / 'vmailbox'}",
        "alias_maps": "",
    }
    (tmp_path / "vmailbox").write_text(
        "postmaster@example.net  example.net/postmaster/\n"
        "alice@example.net       example.net/alice/\n"
        "mboxer@example.net      example.net/mboxer\n"
    )
    facts = SystemFacts(hostname="mail.example.com", config_directory=str(tmp_path))
    config = Config({k: Setting(v) for k, v in (base | settings).items()}, facts)
    return Recipients(config, Addressing(config))


# -- check ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("alice@example.net", None),
        ("ALICE@Example.NET", None),
        (
            "bob@example.net",
            Verdict(
                550,
                "5.1.1",
                "<bob@example.net>: Recipient address rejected: "
                "User unknown in virtual mailbox table",
            ),
        ),
        ("root@mail.example.com", None),  # unix:passwd.byname knows root
        (
            "no-such-user@localhost",
            Verdict(
                550,
                "5.1.1",
                "<no-such-user@localhost>: Recipient address rejected: "
                "User unknown in local recipient table",
            ),
        ),
        ("postmaster@localhost", None),
        ("MAILER-DAEMON@localhost", None),
        ("anyone@remote.example", None),  # not ours to know: relay control decides
    ],
)
def test_check_recipients_of_the_init_configuration(
    tmp_path: Path, address: str, expected: Verdict | None
) -> None:
    assert make_recipients(tmp_path, {}).check(address) == expected


def test_recipient_delimiter_finds_the_base_address(tmp_path: Path) -> None:
    recipients = make_recipients(tmp_path, {}, recipient_delimiter="+")
    assert recipients.check("alice+lists@example.net") is None
    assert recipients.check("root+x@localhost") is None
    assert make_recipients(tmp_path, {}).check("alice+lists@example.net") is not None


def test_virtual_alias_makes_an_address_valid_and_alias_domains_reject_the_rest(
    tmp_path: Path,
) -> None:
    files = {"virtual": "info@example.net alice@example.net\nsales@alias.example  x@y.example\n"}
    recipients = make_recipients(
        tmp_path,
        files,
        virtual_alias_maps=f"texthash:{tmp_path / 'virtual'}",
        virtual_alias_domains="alias.example",
    )
    assert recipients.check("info@example.net") is None
    assert recipients.check("sales@alias.example") is None
    assert recipients.check("other@alias.example") == Verdict(
        550,
        "5.1.1",
        "<other@alias.example>: Recipient address rejected: User unknown in virtual alias table",
    )


def test_sender_wording_codes_and_hidden_table_names(tmp_path: Path) -> None:
    recipients = make_recipients(
        tmp_path,
        {},
        unknown_virtual_mailbox_reject_code="450",
        show_user_unknown_table_name="no",
    )
    assert recipients.check_sender("bob@example.net") == Verdict(
        450, "4.1.0", "<bob@example.net>: Sender address rejected: User unknown"
    )


def test_relay_recipient_maps(tmp_path: Path) -> None:
    recipients = make_recipients(
        tmp_path,
        {"relay_rcpt": "known@relay.example OK\n"},
        relay_domains="relay.example",
        relay_recipient_maps=f"texthash:{tmp_path / 'relay_rcpt'}",
    )
    assert recipients.check("known@relay.example") is None
    verdict = recipients.check("unknown@relay.example")
    assert verdict is not None
    assert verdict.text.endswith("User unknown in relay recipient table")


def test_default_alias_maps_missing_index_defers_and_nis_is_skipped(tmp_path: Path) -> None:
    recipients = make_recipients(
        tmp_path, {}, alias_maps=f"hash:{tmp_path / 'aliases'}, nis:mail.aliases"
    )
    messages = [str(w) for w in recipients.warnings]
    assert messages == [
        f"hash:{tmp_path / 'aliases'} is unavailable. "
        f"open database {tmp_path / 'aliases'}.db: No such file or directory",
        "unsupported dictionary type: nis; nis:mail.aliases is ignored",
    ]
    assert recipients.check("root@localhost") == Verdict(
        451, "4.3.0", "<root@localhost>: Temporary lookup failure"
    )
    assert recipients.check("alice@example.net") is None  # other classes are unaffected


def test_only_unsupported_tables_check_nothing(tmp_path: Path) -> None:
    recipients = make_recipients(tmp_path, {}, local_recipient_maps="nis:passwd.byname")
    assert recipients.check("no-such-user@localhost") is None


# -- expand ---------------------------------------------------------------------------


def virtual(tmp_path: Path, text: str, **settings: str) -> Recipients:
    return make_recipients(
        tmp_path,
        {"virtual": text},
        virtual_alias_maps=f"texthash:{tmp_path / 'virtual'}",
        **settings,
    )


def addresses(result: list[Destination] | Verdict) -> list[str]:
    assert isinstance(result, list), result
    return [destination.address for destination in result]


def test_virtual_mailbox_destination(tmp_path: Path) -> None:
    recipients = make_recipients(
        tmp_path, {}, virtual_uid_maps="static:5000", virtual_gid_maps="static:5001"
    )
    assert recipients.expand("Alice@example.net") == [
        Destination(
            transport="virtual",
            nexthop="example.net",
            address="Alice@example.net",
            original="Alice@example.net",
            mailbox=tmp_path / "mail" / "example.net" / "alice",
            uid=5000,
            gid=5001,
        )
    ]


def test_mbox_paths_and_unknown_users_become_error_destinations(tmp_path: Path) -> None:
    recipients = make_recipients(tmp_path, {})
    [mbox] = recipients.expand("mboxer@example.net")  # type: ignore[misc]
    assert mbox.transport == "error"
    assert mbox.nexthop.startswith("5.3.0 mailbox format is not supported")
    [unknown] = recipients.expand("nobody@example.net")  # type: ignore[misc]
    assert (unknown.transport, unknown.nexthop) == (
        "error",
        '5.1.1 unknown user: "nobody@example.net"',
    )


def test_virtual_alias_multiple_targets_and_self_reference(tmp_path: Path) -> None:
    recipients = virtual(
        tmp_path,
        "team@example.net  alice@example.net, postmaster@example.net bob@remote.example\n"
        "alice@example.net  alice@example.net, carol@remote.example\n",
    )
    result = recipients.expand("team@example.net")
    assert addresses(result) == [
        "alice@example.net",
        "postmaster@example.net",
        "bob@remote.example",
        "carol@remote.example",
    ]
    assert isinstance(result, list)
    assert {d.original for d in result} == {"team@example.net"}
    assert result[2].transport == "smtp"


def test_virtual_alias_loops_and_limits_defer(tmp_path: Path) -> None:
    error = Verdict(451, "4.6.0", "Alias expansion error")
    assert (
        virtual(tmp_path, "a@example.net b@example.net\nb@example.net a@example.net\n").expand(
            "a@example.net"
        )
        == error
    )
    chain = "".join(f"u{i}@example.net u{i + 1}@example.net\n" for i in range(5))
    assert addresses(virtual(tmp_path, chain).expand("u0@example.net")) == ["u5@example.net"]
    limited = virtual(tmp_path, chain, virtual_alias_recursion_limit="3")
    assert limited.expand("u0@example.net") == error
    wide = "list@example.net " + ", ".join(f"m{i}@remote.example" for i in range(5)) + "\n"
    assert (
        virtual(tmp_path, wide, virtual_alias_expansion_limit="4").expand("list@example.net")
        == error
    )


def test_virtual_alias_extension_is_propagated(tmp_path: Path) -> None:
    recipients = virtual(
        tmp_path, "info@example.net  bob@remote.example\n", recipient_delimiter="+"
    )
    assert addresses(recipients.expand("info+news@example.net")) == ["bob+news@remote.example"]


def test_local_aliases_mailboxes_and_unsupported_targets(tmp_path: Path) -> None:
    aliases = tmp_path / "aliases"
    aliases.write_text(
        "postmaster root\n"
        "root root, alice@example.net\n"
        "ops postmaster\n"
        "loop1 loop2\n"
        "loop2 loop1\n"
        'pipe "|/usr/bin/procmail"\n'
        "file /var/log/mail.copy\n"
    )
    recipients = make_recipients(tmp_path, {}, alias_maps=f"texthash:{aliases}")
    result = recipients.expand("ops@localhost")
    assert isinstance(result, list)
    assert [(d.transport, d.address) for d in result] == [
        ("local", "root@mail.example.com"),
        ("virtual", "alice@example.net"),
    ]
    assert result[0].mailbox == ROOT_HOME / "Maildir"
    assert (result[0].uid, result[0].gid) == (0, 0)
    assert result[0].original == "ops@localhost"
    assert recipients.expand("loop1@localhost") == []  # local(8)'s duplicate filter ends it
    assert recipients.expand("pipe@localhost") == Verdict(
        550, "5.3.0", "<pipe@localhost>: alias pipe: mail to command is not supported by mailseal"
    )
    verdict = recipients.expand("file@localhost")
    assert isinstance(verdict, Verdict)
    assert "mail to file is not supported" in verdict.text


def test_local_user_without_alias_and_unknown_local_user(tmp_path: Path) -> None:
    recipients = make_recipients(tmp_path, {}, home_mailbox="Mail/")
    [root] = recipients.expand("root@localhost")  # type: ignore[misc]
    assert (root.transport, root.nexthop, root.mailbox) == (
        "local",
        "mail.example.com",
        ROOT_HOME / "Mail",
    )
    [unknown] = recipients.expand("no-such-user@localhost")  # type: ignore[misc]
    assert unknown.transport == "error"
    mbox = make_recipients(tmp_path, {}, home_mailbox="Mailbox")
    [error] = mbox.expand("root@localhost")  # type: ignore[misc]
    assert error.transport == "error"
    assert "home_mailbox gives Mailbox" in error.nexthop


@pytest.mark.parametrize(
    ("entries", "address", "expected"),
    [
        ("", "x@remote.example", ("smtp", "remote.example")),
        (
            "remote.example relay:[gw.example]:587",
            "x@remote.example",
            ("relay", "[gw.example]:587"),
        ),
        (".example lmtp:unix:private/lmtp", "x@sub.remote.example", ("lmtp", "unix:private/lmtp")),
        ("x@remote.example discard:", "x@remote.example", ("discard", "remote.example")),
        ("remote.example :[smarthost]", "x@remote.example", ("smtp", "[smarthost]")),
        (
            "* error:5.7.1 no mail to anyone",
            "x@remote.example",
            ("error", "5.7.1 no mail to anyone"),
        ),
        ("example.net smtp:[mx.example.net]", "alice@example.net", ("smtp", "[mx.example.net]")),
    ],
)
def test_transport_maps(
    tmp_path: Path, entries: str, address: str, expected: tuple[str, str]
) -> None:
    transport = tmp_path / "transport"
    transport.write_text(entries + "\n")
    recipients = make_recipients(tmp_path, {}, transport_maps=f"texthash:{transport}")
    [destination] = recipients.expand(address)  # type: ignore[misc]
    assert (destination.transport, destination.nexthop) == expected


def test_relayhost_and_virtual_alias_domain_routing(tmp_path: Path) -> None:
    recipients = make_recipients(
        tmp_path, {}, relayhost="[smart.example]:587", virtual_alias_domains="alias.example"
    )
    [remote] = recipients.expand("x@remote.example")  # type: ignore[misc]
    assert (remote.transport, remote.nexthop) == ("smtp", "[smart.example]:587")
    [unknown] = recipients.expand("x@alias.example")  # type: ignore[misc]
    assert (unknown.transport, unknown.nexthop) == (
        "error",
        "5.1.1 User unknown in virtual alias table",
    )
