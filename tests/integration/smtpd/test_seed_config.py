"""The seed tutorial's main.cf and master.cf run a real server.

The seed's files are used as written; the test only appends what a machine
without /etc/postfix must differ in (certificate paths, queue and log
directories, a test domain) and moves the two services to free loopback
ports. Then: port 25 offers STARTTLS and refuses TLSv1; the submission
service (encrypt, mandatory protocols) refuses TLSv1 and TLSv1.1 and
requires STARTTLS before MAIL.
"""

import base64
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from raw_smtp import Dialogue, client_context

from mailseal.testing.process import run_mailseal
from mailseal.testing.server import MailsealProcess, free_port

SEED = Path(__file__).parents[2] / "golden" / "seed"


@pytest.fixture
def seed_server(tmp_path: Path) -> Iterator[tuple[MailsealProcess, int, int, str]]:
    directory = tmp_path / "seed"
    directory.mkdir()
    ca = trustme.CA()
    leaf = ca.issue_cert("mail.seed.test")
    cert = directory / "myserver-full.crt"
    key = directory / "myserver.key"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key))
    key.chmod(0o600)
    cafile = directory / "ca.crt"
    ca.cert_pem.write_to_path(str(cafile))
    smtp_port, submission_port = free_port(), free_port()
    main_cf = (SEED / "main.cf").read_text()
    main_cf += f"""
# --- appended by the test: this machine's paths and a test domain ---
myhostname = mail.seed.test
inet_interfaces = 127.0.0.1
queue_directory = {directory}/queue
data_directory = {directory}/data
maillog_file = {directory}/log/maillog
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_CAfile = {cert}
smtp_tls_cert_file = {cert}
smtp_tls_key_file = {key}
smtp_tls_CAfile = {cert}
virtual_mailbox_domains = seed.test
virtual_mailbox_base = {directory}/mail
virtual_mailbox_maps = inline:{{ user@seed.test=seed.test/user/ }}
"""
    (directory / "main.cf").write_text(main_cf)
    master_cf = (SEED / "master.cf").read_text()
    master_cf = master_cf.replace("\nsmtp      inet", f"\n127.0.0.1:{smtp_port} inet", 1)
    master_cf = master_cf.replace("\nsubmission  inet", f"\n127.0.0.1:{submission_port} inet", 1)
    (directory / "master.cf").write_text(master_cf)
    process = MailsealProcess(directory).start()
    yield process, smtp_port, submission_port, str(cafile)
    process.stop()


def test_seed_port_25_offers_starttls_and_delivers(
    seed_server: tuple[MailsealProcess, int, int, str],
) -> None:
    process, smtp_port, _, cafile = seed_server
    with Dialogue(smtp_port) as smtp:
        smtp.reply()
        assert "STARTTLS" in smtp.command("EHLO client.example.net").lines
        smtp.command("STARTTLS")
        smtp.starttls(ssl.create_default_context(cafile=cafile), "mail.seed.test")
        smtp.command("EHLO client.example.net")
        assert smtp.command("MAIL FROM:<a@client.example.net>").code == 250
        assert smtp.command("RCPT TO:<user@seed.test>").code == 250
        assert smtp.command("DATA").code == 354
        smtp.send(b"Subject: seed\r\n\r\nhi\r\n.\r\n")
        assert smtp.reply().code == 250
    process.wait_delivered(1, user="user", domain="seed.test")


def test_seed_port_25_refuses_tlsv1(seed_server: tuple[MailsealProcess, int, int, str]) -> None:
    _, smtp_port, _, _ = seed_server
    old = client_context(
        minimum=ssl.TLSVersion.TLSv1, maximum=ssl.TLSVersion.TLSv1, ciphers="DEFAULT:@SECLEVEL=0"
    )
    with Dialogue(smtp_port) as smtp:
        smtp.reply()
        smtp.command("EHLO client.example.net")
        smtp.command("STARTTLS")
        with pytest.raises((ssl.SSLError, OSError)):
            smtp.starttls(old)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_seed_submission_requires_modern_tls(
    seed_server: tuple[MailsealProcess, int, int, str], version: ssl.TLSVersion
) -> None:
    _, _, submission_port, _ = seed_server
    with Dialogue(submission_port) as smtp:
        smtp.reply()
        smtp.command("EHLO client.example.net")
        reply = smtp.command("MAIL FROM:<a@client.example.net>")
        assert reply.text == "530 5.7.0 Must issue a STARTTLS command first"
        smtp.command("STARTTLS")
        old = client_context(minimum=version, maximum=version, ciphers="DEFAULT:@SECLEVEL=0")
        with pytest.raises((ssl.SSLError, OSError)):
            smtp.starttls(old)
    with Dialogue(submission_port) as smtp:
        smtp.reply()
        smtp.command("EHLO client.example.net")
        smtp.command("STARTTLS")
        smtp.starttls(client_context(minimum=ssl.TLSVersion.TLSv1_2))
        smtp.command("EHLO client.example.net")
        assert smtp.command("MAIL FROM:<a@client.example.net>").code == 250


def test_seed_submission_relays_only_for_authenticated_users(
    seed_server: tuple[MailsealProcess, int, int, str],
) -> None:
    """The seed's `smtpd_client_restrictions=permit_mynetworks,permit_sasl_authenticated,reject`.

    Loopback is in the default mynetworks, so the test takes it out (postconf -e and a
    reload, as an admin would) to play a client from elsewhere.
    """
    process, _, submission_port, _ = seed_server
    directory = str(process.directory)
    for args in (("postconf", "-e", "mynetworks = 192.0.2.0/24"), ("reload",)):
        result = run_mailseal("-c", directory, *args)
        assert result.returncode == 0, result.stderr
    result = run_mailseal("-c", directory, "passwd", "user@seed.test", stdin="s3cret\n")
    assert result.returncode == 0, result.stderr
    process.wait_log(r"mailseal/master\[\d+\]: reload -- version ")
    with Dialogue(submission_port) as smtp:
        smtp.reply()
        smtp.command("EHLO client.example.net")
        smtp.command("STARTTLS")
        smtp.starttls(client_context())
        assert "AUTH PLAIN LOGIN SCRAM-SHA-256" in smtp.command("EHLO client.example.net").lines
        assert smtp.command("MAIL FROM:<user@seed.test>").code == 250
        refused = smtp.command("RCPT TO:<friend@far-away.example>")
        assert refused.code == 554
        assert refused.text.endswith(">: Client host rejected: Access denied")
        smtp.command("RSET")
        token = base64.b64encode(b"\0user@seed.test\0s3cret").decode()
        assert smtp.command(f"AUTH PLAIN {token}").code == 235
        assert smtp.command("MAIL FROM:<user@seed.test>").code == 250
        assert smtp.command("RCPT TO:<friend@far-away.example>").code == 250
