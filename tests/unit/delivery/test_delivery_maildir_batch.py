"""Maildir group commit: staged files reach new/ only after a shared sync, each reported."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mailseal.delivery import maildir_batch
from mailseal.delivery.maildir import MaildirDelivery, MaildirError, stage_in_maildir
from mailseal.delivery.maildir_batch import MaildirBatch, MaildirResult


def _stage(batch: MaildirBatch, maildir: Path, body: bytes, seen: list[MaildirResult]) -> None:
    batch.add(stage_in_maildir(maildir, body, hostname="h"), seen.append)


def test_a_batch_lands_in_new_only_at_commit(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    batch = MaildirBatch()
    seen: list[MaildirResult] = []
    _stage(batch, one, b"first\r\n", seen)
    _stage(batch, one, b"second\r\n", seen)
    _stage(batch, two, b"third\r\n", seen)
    assert len(batch) == 3
    # Staged: written to tmp/, nothing in new/ and nothing reported yet.
    assert len(os.listdir(one / "tmp")) == 2
    assert os.listdir(one / "new") == []
    assert seen == []

    batch.commit()

    assert len(batch) == 0
    assert (batch.committed, batch.commits) == (3, 1)  # three messages, one commit
    assert [type(result) for result in seen] == [MaildirDelivery] * 3
    delivered = [result for result in seen if isinstance(result, MaildirDelivery)]
    assert [d.path.read_bytes() for d in delivered] == [b"first\n", b"second\n", b"third\n"]
    assert [d.path.parent for d in delivered] == [one / "new", one / "new", two / "new"]
    assert all(d.path.name.endswith(f",S={d.size}") for d in delivered)
    assert os.listdir(one / "tmp") == os.listdir(two / "tmp") == []


def test_one_failed_link_fails_only_its_message(tmp_path: Path) -> None:
    good, broken = tmp_path / "good", tmp_path / "broken"
    batch = MaildirBatch()
    seen: list[MaildirResult] = []
    _stage(batch, good, b"ok\n", seen)
    _stage(batch, broken, b"lost\n", seen)
    shutil.rmtree(broken / "new")  # the link into new/ will fail with ENOENT

    batch.commit()

    assert isinstance(seen[0], MaildirDelivery)
    assert isinstance(seen[1], MaildirError)
    assert seen[1].temporary
    assert seen[1].text.startswith(f"maildir delivery failed: link to {broken}/new/")
    assert os.listdir(broken / "tmp") == []  # the abandoned file is gone


def test_a_failing_syncfs_falls_back_to_one_fsync_per_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def failing_syncfs(fd: int) -> None:
        calls.append(fd)
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(maildir_batch, "sync_descriptor", failing_syncfs)
    batch = MaildirBatch()
    seen: list[MaildirResult] = []
    for n in range(3):
        _stage(batch, tmp_path / "md", b"m%d\n" % n, seen)

    batch.commit()

    assert len(calls) == 1  # tried once for the file system, then file by file
    assert [type(result) for result in seen] == [MaildirDelivery] * 3


def test_an_empty_commit_does_nothing() -> None:
    MaildirBatch().commit()


def test_a_staged_message_finished_unpublished_leaves_nothing(tmp_path: Path) -> None:
    staged = stage_in_maildir(tmp_path / "md", b"m\n", hostname="h")
    staged.finish()
    staged.finish()  # twice is harmless
    assert os.listdir(tmp_path / "md" / "tmp") == []
    assert os.listdir(tmp_path / "md" / "new") == []


def test_an_existing_maildir_without_cur_still_takes_mail(tmp_path: Path) -> None:
    maildir = tmp_path / "md"
    for sub in ("tmp", "new"):
        (maildir / sub).mkdir(parents=True)
    staged = stage_in_maildir(maildir, b"m\n", hostname="h")
    staged.sync()
    delivered = staged.publish()
    staged.sync_new()
    staged.finish()
    assert delivered.path.read_bytes() == b"m\n"
