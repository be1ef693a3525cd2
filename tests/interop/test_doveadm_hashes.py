"""Our password hashes against Dovecot's own ``doveadm pw``, both ways.

Hashes made by doveadm (ARGON2ID, BLF-CRYPT, SHA512-CRYPT, SCRAM-SHA-256) must
verify with the right password and not with a wrong one; a hash made by our
``hash_password``, our SCRAM keys and our SHA-crypt must pass ``doveadm pw -t``
(exit status 0) and fail it for a wrong password. Debian's dovecot-core provides doveadm.
"""

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailseal.services.sasl.hashes import hash_password, verify_password
from mailseal.services.sasl.passwd_file import PasswdFile
from mailseal.services.sasl.shacrypt import sha_crypt
from mailseal.smtp.sasl.credentials import ScramCredentials

pytestmark = pytest.mark.interop

DOVEADM = "/usr/bin/doveadm"
PASSWORD = "Tr0ub4dor & 3 ünïcode"


@pytest.fixture(autouse=True)
def _need_doveadm() -> None:
    if not Path(DOVEADM).exists():
        pytest.fail("doveadm is not installed: run ./dev test (it installs dovecot-core)")


def doveadm_hash(scheme: str, password: str) -> str:
    result = subprocess.run(
        [DOVEADM, "pw", "-s", scheme, "-p", password], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def doveadm_verifies(stored: str, password: str) -> bool:
    result = subprocess.run(
        [DOVEADM, "pw", "-t", stored, "-p", password], capture_output=True, text=True, check=False
    )
    return result.returncode == 0


@pytest.mark.parametrize("scheme", ["ARGON2ID", "BLF-CRYPT", "SHA512-CRYPT", "SCRAM-SHA-256"])
def test_doveadm_hashes_verify_with_ours(scheme: str) -> None:
    stored = doveadm_hash(scheme, PASSWORD)
    assert stored.startswith(f"{{{scheme}}}")
    assert verify_password(stored, PASSWORD)
    assert not verify_password(stored, PASSWORD + "!")
    assert not verify_password(stored, "")


def test_doveadm_sha512_crypt_with_rounds_verifies_with_ours() -> None:
    result = subprocess.run(
        [DOVEADM, "pw", "-s", "SHA512-CRYPT", "-r", "7000", "-p", PASSWORD],
        capture_output=True,
        text=True,
        check=True,
    )
    stored = result.stdout.strip()
    assert stored.startswith("{SHA512-CRYPT}$6$rounds=7000$")
    assert verify_password(stored, PASSWORD)
    assert not verify_password(stored, PASSWORD + "!")


def test_our_sha512_crypt_with_rounds_verifies_with_doveadm() -> None:
    stored = "{SHA512-CRYPT}" + sha_crypt(PASSWORD, "$6$rounds=7000$DoveCotSaltSalt1")
    assert doveadm_verifies(stored, PASSWORD)
    assert not doveadm_verifies(stored, PASSWORD + "!")


def test_our_argon2id_hash_verifies_with_doveadm() -> None:
    stored = hash_password(PASSWORD)
    assert doveadm_verifies(stored, PASSWORD)
    assert not doveadm_verifies(stored, PASSWORD + "!")


def test_our_scram_keys_verify_with_doveadm(tmp_path: Path) -> None:
    path = tmp_path / "sasl_passwd"
    PasswdFile.load(str(path)).with_password("alice", PASSWORD, b"0123456789abcdef").save(str(path))
    entry = PasswdFile.load(str(path)).lookup("alice")
    assert entry is not None
    assert entry.scram is not None
    assert doveadm_verifies(entry.scram.to_text(), PASSWORD)
    assert not doveadm_verifies(entry.scram.to_text(), PASSWORD + "!")
    assert doveadm_verifies(entry.password, PASSWORD)


def test_doveadm_scram_text_parses_as_our_credentials() -> None:
    stored = doveadm_hash("SCRAM-SHA-256", PASSWORD)
    credentials = ScramCredentials.from_text(stored)
    assert credentials.iterations == 4096
    assert credentials.matches(PASSWORD)


# -- Dovecot's passdb reading a file that we wrote ----------------------------------------

DOVECOT = "/usr/sbin/dovecot"
DOVECOT_CONF = """\
base_dir = {base}/run
state_dir = {base}/state
instance_name = mailseal-test
log_path = {base}/dovecot.log
protocols =
ssl = no
auth_mechanisms = plain
passdb {{
  driver = passwd-file
  args = {users}
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}}
# Root so the test's private temp directory is readable; the file's format is the point.
service auth {{
  user = root
}}
"""


@pytest.fixture
def dovecot(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A Dovecot with only its auth service, reading ``users``: (config file, users file)."""
    users = tmp_path / "users"
    conf = tmp_path / "dovecot.conf"
    conf.write_text(DOVECOT_CONF.format(base=tmp_path, users=users))
    # Dovecot forks into the background: output to files, not pipes its children would
    # hold open (a pipe would make run() wait for the daemon).
    with (tmp_path / "start.out").open("w") as out:
        started = subprocess.run(
            [DOVECOT, "-c", str(conf)], stdout=out, stderr=out, check=False, timeout=30
        )
    assert started.returncode == 0, (tmp_path / "start.out").read_text()
    try:
        yield conf, users
    finally:
        subprocess.run(
            [DOVEADM, "-c", str(conf), "stop"], check=False, capture_output=True, timeout=30
        )


def dovecot_auth(conf: Path, user: str, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DOVEADM, "-c", str(conf), "auth", "test", "-x", "service=smtp", user, password],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def test_dovecot_authenticates_from_a_file_we_wrote(dovecot: tuple[Path, Path]) -> None:
    conf, users = dovecot
    users.write_text("# a Dovecot file, then mailseal adds a user\nold:{PLAIN}kept\n")
    PasswdFile.load(str(users)).with_password("alice", PASSWORD, b"0123456789abcdef").save(
        str(users)
    )
    accepted = dovecot_auth(conf, "alice", PASSWORD)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "auth succeeded" in accepted.stdout
    assert "mailseal_scram={SCRAM-SHA-256}" in accepted.stdout  # an extra field it passes on
    refused = dovecot_auth(conf, "alice", PASSWORD + "!")
    assert refused.returncode != 0
    assert "auth failed" in refused.stdout
    assert dovecot_auth(conf, "old", "kept").returncode == 0
