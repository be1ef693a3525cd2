"""sendmail while the server is down, and when the queue cannot be written."""

from pathlib import Path

from sendmail_support import sendmail, tag, wait_message

from mailseal.queue.maildrop import Maildrop
from mailseal.testing.server import MailsealProcess, make_instance


def test_mail_waits_in_maildrop_until_the_server_starts(tmp_path: Path) -> None:
    directory = tmp_path / "mailseal"
    make_instance(directory)
    subjects = [tag(), tag()]
    for subject in subjects:
        stdin = f"Subject: {subject}\n\nqueued while down\n".encode()
        result = sendmail(directory, "postmaster@example.test", stdin=stdin)
        assert (result.returncode, result.stderr) == (0, b"")
    waiting = Maildrop(directory / "queue").list()
    assert len(waiting) == 2
    with MailsealProcess(directory) as process:
        for subject in subjects:
            assert wait_message(process, subject).get_payload() == "queued while down\n"
        process.wait_log(r"mailseal/pickup\[\d+\]: [0-9A-F]+: uid=\d+ from=<", count=2)
        assert Maildrop(directory / "queue").list() == []


def test_a_poke_after_start_is_picked_up_at_once(tmp_path: Path) -> None:
    directory = tmp_path / "mailseal"
    make_instance(directory)
    with MailsealProcess(directory) as process:
        subject = tag()
        result = sendmail(
            directory, "postmaster@example.test", stdin=f"Subject: {subject}\n\n".encode()
        )
        assert result.returncode == 0
        # well inside pickup's periodic scan: the poke woke it
        assert wait_message(process, subject, timeout=3.0)


def test_unwritable_queue_is_a_temporary_failure(tmp_path: Path) -> None:
    directory = tmp_path / "mailseal"
    make_instance(directory)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a regular file, so nothing can be created below it (even by root)\n")
    with (directory / "main.cf").open("a") as main_cf:
        main_cf.write(f"queue_directory = {blocker}/queue\n")
    result = sendmail(directory, "postmaster@example.test", stdin=b"Subject: x\n\nx\n")
    assert result.returncode == 75  # EX_TEMPFAIL: the caller tries again later
    stderr = result.stderr.decode()
    assert stderr.startswith("sendmail: fatal: ")
    assert f"error writing queue file: {blocker}/queue/maildrop: Not a directory" in stderr
    assert "Traceback" not in stderr
    assert stderr.count("\n") == 1


def test_bad_main_cf_is_a_temporary_failure_without_traceback(tmp_path: Path) -> None:
    directory = tmp_path / "mailseal"
    make_instance(directory)
    with (directory / "main.cf").open("a") as main_cf:
        main_cf.write("message_size_limit = lots\n")
    result = sendmail(directory, "postmaster@example.test", stdin=b"x\n")
    assert result.returncode == 75
    assert result.stderr.startswith(b"sendmail: fatal: ")
    assert b"message_size_limit" in result.stderr
    assert b"Traceback" not in result.stderr


def test_an_unprivileged_user_submits_through_maildrop(tmp_path: Path) -> None:
    """cron jobs of ordinary users: the queue directory is searchable, maildrop/ writable.

    The instance lives outside pytest's private tmp root so that ``nobody`` can read
    main.cf; sendmail runs under setpriv as uid 65534 while the server runs as root.
    """
    import os
    import shutil
    import subprocess
    import sys
    import tempfile

    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        raise AssertionError("this test needs root and setpriv (util-linux) to switch users")
    base = Path(tempfile.mkdtemp(prefix="mailseal-nobody-", dir="/tmp"))
    try:
        base.chmod(0o755)
        directory = base / "mailseal"
        make_instance(directory)
        subject = tag()
        with MailsealProcess(directory) as process:
            result = subprocess.run(
                [
                    "setpriv",
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    sys.executable,
                    "-m",
                    "mailseal",
                    "-c",
                    str(directory),
                    "sendmail",
                    "postmaster@example.test",
                ],
                input=f"Subject: {subject}\n\nfrom cron\n".encode(),
                capture_output=True,
                timeout=60,
                check=False,
                env={"PATH": "/usr/bin:/bin", "HOME": "/"},
            )
            assert (result.returncode, result.stderr) == (0, b"")
            delivered = wait_message(process, subject)
            process.wait_log(r"pickup\[\d+\]: [0-9A-F]+: uid=65534 from=<nobody>")
        assert delivered["From"] is not None and "nobody@" in delivered["From"]
    finally:
        shutil.rmtree(base, ignore_errors=True)
