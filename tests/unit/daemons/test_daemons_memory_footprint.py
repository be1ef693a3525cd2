"""What an smtpd process and the master keep resident (issue #7's memory bar).

``cryptography.x509`` (~10 MB) and dnspython (~7 MB) are loaded only when a
certificate is looked at or a name is resolved; the server's key and chain are
read without them (OpenSSL checks the pair), with the careful ``cryptography``
reading kept for everything unusual and for Postfix's problem texts. Freed heap
goes back to the kernel on a timer.
"""

from __future__ import annotations

import asyncio
import datetime
import gc
import json
import subprocess
import sys
import time
import weakref
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from mailseal.daemons import heap
from mailseal.daemons.heap import HeapTrimmer, malloc_trim
from mailseal.tls import chains
from mailseal.tls.chains import ChainError, load_chain_files
from mailseal.tls.chains_parsed import parsed_chain_files, parsed_pair

_PROBE = """
import json, sys
from mailseal.config.errors import Setting
from mailseal.config.facts import SystemFacts
from mailseal.config.model import Config
import mailseal.daemons.master, mailseal.daemons.smtpd_worker
import mailseal.cli.main  # the master runs in the mailseal command's process
import mailseal.daemons.metrics, mailseal.daemons.json_log, mailseal.daemons.control
from mailseal.net.dns import Resolver
from mailseal.tls.server import build_server_tls
facts = SystemFacts(hostname="mail.example.com", config_directory="/etc/mailseal")
config = Config({"smtpd_tls_security_level": Setting("may"),
                 "smtpd_tls_cert_file": Setting(sys.argv[1])}, facts)
tls = build_server_tls(config)
Resolver(inet_protocols="all")
heavy = ("cryptography.x509", "dns.resolver", "dns.asyncresolver", "mailseal.tls.chains_parsed")
print(json.dumps({"problem": tls.problem, "offered": tls.offered,
                  "loaded": [name for name in heavy if name in sys.modules]}))
"""


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _write(path: Path, *blobs: bytes) -> str:
    path.write_bytes(b"".join(blobs))
    return str(path)


def _self_signed(key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mail.example.com")])
    now = datetime.datetime.now(datetime.UTC)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, algorithm)
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, traditional: bool) -> bytes:
    layout = serialization.PrivateFormat.TraditionalOpenSSL
    return key.private_bytes(
        serialization.Encoding.PEM,
        layout if traditional else serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def test_server_processes_load_neither_x509_nor_dnspython(tmp_path: Path, ca: trustme.CA) -> None:
    leaf = ca.issue_cert("mail.example.com")
    key, leaf_cert = leaf.private_key_pem.bytes(), leaf.cert_chain_pems[0].bytes()
    cert = _write(tmp_path / "cert.pem", key, leaf_cert)
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, cert], capture_output=True, text=True, timeout=60, check=True
    )
    result = json.loads(out.stdout)
    assert result == {"problem": None, "offered": True, "loaded": []}


@pytest.mark.parametrize(
    ("kind", "traditional", "algorithm"),
    [
        (trustme.KeyType.RSA, False, "RSA"),
        (trustme.KeyType.RSA, True, "RSA"),
        (trustme.KeyType.ECDSA, False, "ECDSA"),
        (trustme.KeyType.ECDSA, True, "ECDSA"),
    ],
)
def test_quick_reading_names_the_key_type_as_the_careful_one(
    tmp_path: Path, kind: trustme.KeyType, traditional: bool, algorithm: str
) -> None:
    leaf = trustme.CA(key_type=kind).issue_cert("mail.example.com", key_type=kind)
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    path = _write(tmp_path / "chain.pem", _key_pem(key, traditional), chain)
    quick = chains._quick_chain_files([path])
    assert quick is not None
    (careful,) = parsed_chain_files([path])
    assert [c.algorithm for c in quick] == [careful.algorithm] == [algorithm]
    assert chains._quick_pair(path, path) is not None
    assert parsed_pair("RSA", path, path).algorithm == algorithm


def test_two_key_types_in_one_chain_file_are_both_read_quickly(tmp_path: Path) -> None:
    rsa_leaf = trustme.CA().issue_cert("mail.example.com", key_type=trustme.KeyType.RSA)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ed_key = ed25519.Ed25519PrivateKey.generate()
    path = _write(
        tmp_path / "chains.pem",
        rsa_leaf.private_key_pem.bytes(),
        *(blob.bytes() for blob in rsa_leaf.cert_chain_pems),
        _key_pem(ec_key, traditional=True),
        _self_signed(ec_key),
        ed_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        _self_signed(ed_key),
    )
    quick = chains._quick_chain_files([path])
    assert quick is not None
    assert [c.algorithm for c in quick] == ["RSA", "ECDSA", "Ed25519"]
    assert [c.algorithm for c in load_chain_files([path])] == ["RSA", "ECDSA", "Ed25519"]


def test_a_mismatched_pair_gets_the_careful_reading_and_its_text(
    tmp_path: Path, ca: trustme.CA
) -> None:
    one, other = ca.issue_cert("a.example.com"), ca.issue_cert("b.example.com")
    path = _write(
        tmp_path / "chain.pem", other.private_key_pem.bytes(), one.cert_chain_pems[0].bytes()
    )
    assert chains._quick_chain_files([path]) is None
    with pytest.raises(ChainError, match=r"key at index 2 in .* does not match the certificate"):
        load_chain_files([path])


def test_an_encrypted_key_is_refused_without_asking_for_a_passphrase(
    tmp_path: Path, ca: trustme.CA
) -> None:
    leaf = ca.issue_cert("mail.example.com")
    key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    cert = leaf.cert_chain_pems[0].bytes()
    secret = serialization.BestAvailableEncryption(b"secret")
    pkcs8 = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, secret)
    path = _write(tmp_path / "pkcs8.pem", pkcs8, cert)
    with pytest.raises(ChainError, match=r"\(encrypted keys are not supported\)$"):
        load_chain_files([path])
    legacy = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, secret
    )
    assert b"Proc-Type" in legacy
    path = _write(tmp_path / "legacy.pem", legacy, cert)
    assert chains._quick_pair(path, path) is None
    with pytest.raises(ChainError, match=r"error loading private key \(PEM object number 1\)"):
        load_chain_files([path])


def test_the_pkcs8_algorithm_is_read_from_the_der_header() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert chains._pkcs8_algorithm(der) == bytes.fromhex("2b6570")
    assert chains._pkcs8_algorithm(der[:5]) is None
    assert chains._pkcs8_algorithm(b"\x02\x01\x00") is None


def test_heap_trimmer_runs_and_stops() -> None:
    async def run() -> bool:
        trimmer = HeapTrimmer(interval=0.01)
        trimmer.start()
        await asyncio.sleep(0.05)
        running = trimmer._task is not None and not trimmer._task.done()
        await trimmer.stop()
        return running and trimmer._task is None

    assert asyncio.run(run()) == sys.platform.startswith("linux")


class _Cycle:
    def __init__(self) -> None:
        self.me = self
        self.buffer = bytearray(100_000)


def test_heap_trimmer_of_a_worker_collects_cycles_even_when_idle() -> None:
    """Python starts no full collection in an idle process: the trimmer does."""

    async def run() -> bool:
        trimmer = HeapTrimmer(interval=0.01, collect=True)
        trimmer.start()
        cycle = _Cycle()
        gone = weakref.ref(cycle)
        del cycle
        await asyncio.sleep(0.1)
        await trimmer.stop()
        return gone() is None

    gc.collect()
    gc.disable()
    try:
        assert asyncio.run(run())
    finally:
        gc.enable()


def test_heap_trimmer_trims_once_soon_after_a_burst(monkeypatch: pytest.MonkeyPatch) -> None:
    """soon(): one trim (and collection) now, the next no sooner than ``settle`` later."""
    trims: list[float] = []

    def counted() -> bool:
        trims.append(time.monotonic())
        return True

    monkeypatch.setattr(heap, "malloc_trim", counted)

    async def run() -> tuple[bool, int]:
        trimmer = HeapTrimmer(interval=60.0, collect=True, settle=0.5)
        trimmer.start()
        cycle = _Cycle()
        gone = weakref.ref(cycle)
        del cycle
        trimmer.soon()
        trimmer.soon()  # pending already: no second one
        await asyncio.sleep(0.01)
        freed = gone() is None  # at once, not after settle
        trimmer.soon()  # the first has run: a new one, settle after it
        await asyncio.sleep(0.01)
        early = len(trims)
        await asyncio.sleep(1.0)
        await trimmer.stop()
        return freed, early

    gc.collect()
    gc.disable()
    try:
        assert asyncio.run(run()) == (True, 1)
    finally:
        gc.enable()
    assert len(trims) == 2


def test_malloc_trim_gives_freed_buffers_back() -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("glibc only")
    buffers = [bytearray(100_000) for _ in range(300)]
    del buffers[::2]  # holes in the heap: nothing glibc would give back by itself
    assert malloc_trim() is True
