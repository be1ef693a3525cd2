"""Maildir delivery: layout, names, line ends, ownership, and failure classification."""

from __future__ import annotations

import errno
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailseal.delivery.maildir import (
    MaildirError,
    deliver_to_maildir,
    dsn_for_errno,
    maildir_filename,
)

NAME = re.compile(r"(\d+)\.M(\d+)P(\d+)Q(\d+)\.(.+),S=(\d+)")
NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="ownership needs root")


def test_creates_maildir_and_delivers_into_new(tmp_path: Path) -> None:
    maildir = tmp_path / "home" / "user" / "Maildir"
    result = deliver_to_maildir(maildir, b"Subject: x\r\n\r\nbody\r\n", hostname="mx.example")
    for sub in ("", "cur", "new", "tmp"):
        assert (maildir / sub).is_dir()
        assert (maildir / sub).stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "home" / "user").stat().st_mode & 0o777 == 0o700
    assert result.path.parent == maildir / "new"
    assert result.path.read_bytes() == b"Subject: x\n\nbody\n"
    assert result.path.stat().st_mode & 0o777 == 0o600
    assert os.listdir(maildir / "tmp") == []
    match = NAME.fullmatch(result.path.name)
    assert match is not None
    assert int(match[3]) == os.getpid()
    assert match[5] == "mx.example"
    assert int(match[6]) == result.size == result.path.stat().st_size == 17


def test_lf_conversion_prepend_and_final_newline(tmp_path: Path) -> None:
    result = deliver_to_maildir(
        tmp_path / "md",
        b"Subject: x\r\n\r\nlone\rCR kept\r\nno newline at end",
        prepend=b"Return-Path: <a@b>\r\nDelivered-To: c@d\n",
        hostname="h",
    )
    assert result.path.read_bytes() == (
        b"Return-Path: <a@b>\nDelivered-To: c@d\nSubject: x\n\nlone\rCR kept\nno newline at end\n"
    )
    assert result.size == len(result.path.read_bytes())


def test_unique_names_under_rapid_delivery(tmp_path: Path) -> None:
    maildir = tmp_path / "md"
    paths = {deliver_to_maildir(maildir, b"m\n", hostname="h").path for _ in range(500)}
    assert len(paths) == 500
    assert len(os.listdir(maildir / "new")) == 500


def test_hostname_escapes() -> None:
    name = maildir_filename("bad/host:name,x", 10, now_ns=1_700_000_000_123_456_789)
    assert name.startswith("1700000000.M123456P")
    assert name.endswith(r".bad\057host\072name\054x,S=10")


@needs_root
def test_chown_to_recipient(tmp_path: Path) -> None:
    base = tmp_path / "vmail"
    base.mkdir()
    maildir = base / "example.net" / "user"
    result = deliver_to_maildir(maildir, b"m\n", uid=NOBODY, gid=NOBODY, hostname="h")
    for path in (base / "example.net", maildir, maildir / "tmp", maildir / "new", result.path):
        status = path.stat()
        assert (status.st_uid, status.st_gid) == (NOBODY, NOBODY), path
    assert base.stat().st_uid == 0  # existing directories are not touched


@needs_root
def test_refuses_maildir_owned_by_someone_else(tmp_path: Path) -> None:
    maildir = tmp_path / "md"
    deliver_to_maildir(maildir, b"m\n", hostname="h")  # created as root
    with pytest.raises(MaildirError) as caught:
        deliver_to_maildir(maildir, b"m\n", uid=NOBODY, gid=NOBODY, hostname="h")
    assert caught.value.temporary
    assert (
        caught.value.text
        == f"maildir delivery failed: maildir {maildir} is not owned by UID {NOBODY}"
    )
    assert len(os.listdir(maildir / "new")) == 1


def test_not_a_directory_is_permanent(tmp_path: Path) -> None:
    maildir = tmp_path / "file"
    maildir.write_text("I am a file")
    with pytest.raises(MaildirError) as caught:
        deliver_to_maildir(maildir, b"m\n", hostname="h")
    assert not caught.value.temporary
    assert caught.value.dsn == "5.2.0"
    assert caught.value.text == (
        f"maildir delivery failed: create maildir file {maildir}/tmp: Not a directory"
    )
    with pytest.raises(MaildirError) as below_file:
        deliver_to_maildir(maildir / "Maildir", b"m\n", hostname="h")
    assert not below_file.value.temporary


def test_symlinked_tmp_is_not_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    maildir = tmp_path / "md"
    maildir.mkdir()
    (maildir / "tmp").symlink_to(elsewhere)
    with pytest.raises(MaildirError) as caught:
        deliver_to_maildir(maildir, b"m\n", hostname="h")
    assert not caught.value.temporary
    assert os.listdir(elsewhere) == []


@pytest.fixture
def tiny_filesystem(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def test_disk_full_is_temporary_and_leaves_nothing(tiny_filesystem: Path) -> None:
    maildir = tiny_filesystem / "md"
    with pytest.raises(MaildirError) as caught:
        deliver_to_maildir(maildir, b"x" * 200_000 + b"\n", hostname="h")
    assert caught.value.temporary
    assert caught.value.dsn == "4.3.0"
    assert caught.value.text == (
        "maildir delivery failed: error writing message: No space left on device"
    )
    assert os.listdir(maildir / "tmp") == []
    assert os.listdir(maildir / "new") == []


@pytest.mark.parametrize(
    ("err", "default", "dsn"),
    [
        (errno.EAGAIN, "5.3.0", "4.2.0"),
        (errno.ESTALE, "5.3.0", "4.2.0"),
        (errno.ENOSPC, "5.3.0", "4.3.0"),
        (errno.EDQUOT, "4.2.0", "5.2.2"),
        (errno.EFBIG, "4.2.0", "5.2.2"),
        (errno.ENOTDIR, "4.2.0", "5.2.0"),
        (errno.EACCES, "4.2.0", "4.2.0"),
        (errno.EIO, "5.3.0", "5.3.0"),
    ],
)
def test_errno_to_dsn_as_postfix_mbox_dsn(err: int, default: str, dsn: str) -> None:
    assert dsn_for_errno(err, default) == dsn
