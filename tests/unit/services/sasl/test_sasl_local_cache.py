"""The built-in backend's cache of verified passwords (services/sasl/local.py)."""

from __future__ import annotations

import os
from pathlib import Path

from mailseal.services.sasl.backend import Accepted, Rejected
from mailseal.services.sasl.hashes import hash_password
from mailseal.services.sasl.local import CACHE_SIZE, CACHE_TTL, LocalBackend


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _backend(tmp_path: Path, text: str, clock: Clock) -> tuple[LocalBackend, Path]:
    path = tmp_path / "sasl_passwd"
    path.write_text(text)
    return LocalBackend(str(path), clock=clock), path


def test_a_verified_password_is_trusted_for_the_ttl_then_checked_again(tmp_path: Path) -> None:
    clock = Clock()
    backend, _ = _backend(tmp_path, f"alice@example.test:{hash_password('s3cret')}\n", clock)
    assert backend.cached("alice@example.test", "s3cret") is None  # nothing verified yet
    assert isinstance(backend.check_password("alice@example.test", "s3cret"), Accepted)
    hit = backend.cached("alice@example.test", "s3cret")
    assert isinstance(hit, Accepted)
    assert hit.username == "alice@example.test"
    assert backend.cache_hits == 1
    assert backend.cached("alice@example.test", "wrong") is None
    clock.now += CACHE_TTL + 1
    assert backend.cached("alice@example.test", "s3cret") is None


def test_failures_are_never_cached(tmp_path: Path) -> None:
    clock = Clock()
    backend, _ = _backend(tmp_path, "bob@example.test:{PLAIN}right\n", clock)
    assert isinstance(backend.check_password("bob@example.test", "guess"), Rejected)
    assert backend.cached("bob@example.test", "guess") is None
    assert isinstance(backend.check_password("nobody@example.test", "x"), Rejected)
    assert backend.cached("nobody@example.test", "x") is None


def test_a_changed_password_or_removed_user_is_checked_afresh(tmp_path: Path) -> None:
    clock = Clock()
    backend, path = _backend(
        tmp_path, "carol@example.test:{PLAIN}old\ndave@example.test:{PLAIN}pw\n", clock
    )
    assert isinstance(backend.check_password("carol@example.test", "old"), Accepted)
    assert isinstance(backend.check_password("dave@example.test", "pw"), Accepted)
    path.write_text("carol@example.test:{PLAIN}new\n")
    stat = path.stat()
    os.utime(path, (stat.st_atime, stat.st_mtime + 5))  # a visibly newer file
    assert backend.cached("carol@example.test", "old") is None
    assert isinstance(backend.check_password("carol@example.test", "old"), Rejected)
    assert backend.cached("dave@example.test", "pw") is None  # removed from the file


def test_the_cache_is_bounded(tmp_path: Path) -> None:
    clock = Clock()
    users = "".join(f"u{n}@example.test:{{PLAIN}}p{n}\n" for n in range(CACHE_SIZE + 5))
    backend, _ = _backend(tmp_path, users, clock)
    for n in range(CACHE_SIZE + 5):
        assert isinstance(backend.check_password(f"u{n}@example.test", f"p{n}"), Accepted)
    assert len(backend._cache) == CACHE_SIZE
    assert backend.cached("u0@example.test", "p0") is None  # the oldest went first
    assert isinstance(
        backend.cached(f"u{CACHE_SIZE + 4}@example.test", f"p{CACHE_SIZE + 4}"), Accepted
    )
