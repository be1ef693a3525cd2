"""Password schemes of the users file: each verifies the right password only; bad hashes raise."""

import bcrypt
import pytest

from mailseal.services.sasl.hashes import SCHEMES, UnsupportedHash, hash_password, verify_password
from mailseal.services.sasl.shacrypt import ShaCryptError, sha_crypt, verify_sha_crypt
from mailseal.smtp.sasl.credentials import ScramCredentials

# The test vectors of Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512" (SHA-512
# part, and the first two SHA-256 ones): (setting, password, expected crypt output).
DREPPER_VECTORS = [
    (
        "$6$saltstring",
        "Hello world!",
        "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFC"
        "oEOfaS35inz1",
    ),
    (
        "$6$rounds=10000$saltstringsaltstring",
        "Hello world!",
        "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8v"
        "OuZeHBy/YTBmSK6H9qs/y3RnOaw5v.",
    ),
    (
        "$6$rounds=5000$toolongsaltstring",
        "This is just a test",
        "$6$rounds=5000$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1y"
        "xdYcz/e1JSbq3y6JMxxl8audkUEm0",
    ),
    (
        "$6$rounds=1400$anotherlongsaltstring",
        "a very much longer text to encrypt.  This one even stretches over morethan one line.",
        "$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9"
        "t0oSwbtEW7o7UmJEiDwGqd8p4ur1",
    ),
    (
        "$6$rounds=77777$short",
        "we have a short salt string but not a short password",
        "$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmt"
        "lcGZelFl5CxtgfiAc0",
    ),
    (
        "$6$rounds=123456$asaltof16chars..",
        "a short string",
        "$6$rounds=123456$asaltof16chars..$BtCwjqMJGx5hrJhZywWvt0RLE8uZ4oPwcelCjmw2kSYu.Ec6ycULevoBK"
        "25fs2xXgMNrCzIMVcgEJAstJeonj1",
    ),
    (
        "$6$rounds=10$roundstoolow",
        "the minimum number is still observed",
        "$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4Z"
        "EQpyUNGc0dqbpBYYBaHHrsX.",
    ),
    ("$5$saltstring", "Hello world!", "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"),
    (
        "$5$rounds=10000$saltstringsaltstring",
        "Hello world!",
        "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA",
    ),
]


@pytest.mark.parametrize(("setting", "password", "expected"), DREPPER_VECTORS)
def test_sha_crypt_matches_drepper_vectors(setting: str, password: str, expected: str) -> None:
    assert sha_crypt(password, setting) == expected


@pytest.mark.parametrize(
    ("setting", "password", "expected"),
    [v for v in DREPPER_VECTORS if "roundstoolow" not in v[0]],
)
def test_sha512_crypt_scheme_verifies_right_password_only(
    setting: str, password: str, expected: str
) -> None:
    scheme = "{SHA512-CRYPT}" if expected.startswith("$6$") else "{SHA256-CRYPT}"
    assert verify_password(scheme + expected, password)
    assert not verify_password(scheme + expected, password + "x")
    assert not verify_password(scheme + expected, "")


def test_sha_crypt_clamped_result_verifies() -> None:
    # The spec clamps rounds=10 to 1000 and writes the clamped value in the result.
    stored = DREPPER_VECTORS[6][2]
    assert verify_password("{SHA512-CRYPT}" + stored, "the minimum number is still observed")


@pytest.mark.parametrize(
    "stored",
    [
        "$6$saltstring$tooshort",
        "$6$rounds=10$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4Z"
        "EQpyUNGc0dqbpBYYBaHHrsX.",  # libxcrypt refuses rounds below 1000 instead of clamping
        "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFC"
        "oEOfaS35inz!",
        "$7$saltstring$x",
        "$6$",
    ],
)
def test_malformed_sha_crypt_raises(stored: str) -> None:
    with pytest.raises(ShaCryptError):
        verify_sha_crypt(stored, "pw")
    with pytest.raises(UnsupportedHash):
        verify_password("{SHA512-CRYPT}" + stored, "pw")


def test_sha512_scheme_refuses_a_sha256_hash() -> None:
    with pytest.raises(UnsupportedHash, match=r"\$6\$"):
        verify_password("{SHA512-CRYPT}" + DREPPER_VECTORS[7][2], "Hello world!")


def test_sha_crypt_utf8_password_round_trips() -> None:
    stored = sha_crypt("pässwörd ✓", "$6$rounds=1000$abcdefgh")
    assert verify_sha_crypt(stored, "pässwörd ✓")
    assert not verify_sha_crypt(stored, "passwörd ✓")


@pytest.fixture(scope="module")
def argon2_hash() -> str:
    """One hash of "correct horse" for the module: Dovecot's cost takes a while to compute."""
    return hash_password("correct horse")


def test_argon2id_hash_password_form_and_verification(argon2_hash: str) -> None:
    assert argon2_hash.startswith("{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$")
    assert verify_password(argon2_hash, "correct horse")
    assert not verify_password(argon2_hash, "correct horse ")


def test_hash_password_uses_a_fresh_salt(argon2_hash: str) -> None:
    assert hash_password("correct horse") != argon2_hash


@pytest.mark.parametrize("prefix", ["{argon2id}", "{CRYPT}", ""])
def test_argon2id_under_crypt_and_without_scheme(argon2_hash: str, prefix: str) -> None:
    # Dovecot's passwd-file default scheme is CRYPT; crypt(3) strings carry their own kind.
    stored = prefix + argon2_hash.removeprefix("{ARGON2ID}")
    assert verify_password(stored, "correct horse")
    assert not verify_password(stored, "Correct horse")


@pytest.mark.parametrize(
    "stored",
    [
        "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$bad",
        "{ARGON2ID}$argon2i$v=19$m=65536,t=3,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "{ARGON2ID}argon2id",
    ],
)
def test_malformed_argon2_raises(stored: str) -> None:
    with pytest.raises(UnsupportedHash):
        verify_password(stored, "pw")


@pytest.mark.parametrize("variant", [b"$2a$", b"$2b$", b"$2y$"])
def test_blf_crypt_verifies_right_password_only(variant: bytes) -> None:
    made = bcrypt.hashpw(b"hunter2", bcrypt.gensalt(4))
    stored = "{BLF-CRYPT}" + (variant + made[4:]).decode()
    assert verify_password(stored, "hunter2")
    assert not verify_password(stored, "hunter3")
    assert verify_password(stored.removeprefix("{BLF-CRYPT}"), "hunter2")  # CRYPT default


def test_blf_crypt_reads_only_72_bytes_like_crypt_blowfish() -> None:
    long = "x" * 72
    stored = "{BLF-CRYPT}" + bcrypt.hashpw(long.encode(), bcrypt.gensalt(4)).decode()
    assert verify_password(stored, long + "ignored")
    assert not verify_password(stored, "x" * 71)


@pytest.mark.parametrize("stored", ["{BLF-CRYPT}$2y$05$short", "{BLF-CRYPT}$2z$05$" + "a" * 53])
def test_malformed_blf_crypt_raises(stored: str) -> None:
    with pytest.raises(UnsupportedHash, match="BLF-CRYPT"):
        verify_password(stored, "pw")


def test_scram_sha_256_verifies_right_password_only() -> None:
    stored = ScramCredentials.derive("pencil", b"0123456789abcdef").to_text()
    assert verify_password(stored, "pencil")
    assert not verify_password(stored, "pencil2")


@pytest.mark.parametrize(
    "stored", ["{SCRAM-SHA-256}4096,abc", "{SCRAM-SHA-256}x,AAAA,AAAA,AAAA", "{SCRAM-SHA-256}"]
)
def test_malformed_scram_raises(stored: str) -> None:
    with pytest.raises(UnsupportedHash):
        verify_password(stored, "pencil")


@pytest.mark.parametrize("scheme", ["PLAIN", "CLEAR", "CLEARTEXT", "plain"])
def test_plain_verifies_right_password_only(scheme: str) -> None:
    assert verify_password(f"{{{scheme}}}open sesame", "open sesame")
    assert not verify_password(f"{{{scheme}}}open sesame", "open sesame!")


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        ("{MD5-CRYPT}$1$abc$def", "unsupported password scheme {MD5-CRYPT}"),
        ("{SHA512-CRYPT", "no closing"),
        ("{PLAIN}", "empty {PLAIN} password"),
        ("plaintext-looking", "CRYPT hash is none of"),
        ("$1$abc$def", "CRYPT hash is none of"),
    ],
)
def test_unknown_or_malformed_raise_with_clear_message(stored: str, message: str) -> None:
    with pytest.raises(UnsupportedHash, match=message.replace("{", r"\{").replace("$", r"\$")):
        verify_password(stored, "pw")


def test_unsupported_hash_is_a_value_error() -> None:
    assert issubclass(UnsupportedHash, ValueError)


def test_schemes_lists_the_readable_schemes() -> None:
    for scheme in ("ARGON2ID", "BLF-CRYPT", "SHA512-CRYPT", "SCRAM-SHA-256", "PLAIN"):
        assert scheme in SCHEMES
    assert "MD5-CRYPT" not in SCHEMES
