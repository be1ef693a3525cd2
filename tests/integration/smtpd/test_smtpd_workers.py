"""smtpd in worker processes (issue #7's two cores): hand-off, anvil, reload, crash, stop.

With ``smtpd_worker_processes = 2`` the master keeps the ports and the queue
manager and passes each connection to a worker. These tests look at which
process really holds a client's connection (``/proc/net/tcp`` inode -> the
process's ``/proc/PID/fd``), so "spread round-robin" and "one client, one
worker" are observed, not assumed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import smtplib
import time
from pathlib import Path

import pytest
from raw_smtp import Dialogue, client_context

from mailseal.testing.process import run_mailseal
from mailseal.testing.server import Instance, MailsealProcess, Servers, make_instance

RCPT = "postmaster@example.test"
TWO_WORKERS = "smtpd_worker_processes = 2"


def _children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    found: list[int] = []
    for task in tasks.iterdir():
        # asyncio runs a thread per child process that ends with it: a task listed
        # a moment ago may be gone by the time its file is read.
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            found += [int(p) for p in (task / "children").read_text(encoding="ascii").split()]
    return sorted(found)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return b""  # exited since it was listed


def _workers(master: int, want: int = 2, timeout: float = 20.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = [p for p in _children(master) if b"smtpd_worker" in _cmdline(p)]
        if len(workers) == want:
            return workers
        time.sleep(0.1)
    raise AssertionError(f"not {want} workers under {master}: {_children(master)}")


def _server_inode(server_port: int, client_port: int) -> int:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text(encoding="ascii").splitlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if (
                int(local.rsplit(":", 1)[1], 16) == server_port
                and int(remote.rsplit(":", 1)[1], 16) == client_port
            ):
                return int(fields[9])
    raise AssertionError(f"no server socket for client port {client_port}")


def _holder(smtp: Dialogue, server_port: int, pids: list[int]) -> int:
    """Which of ``pids`` holds the server side of this client's connection."""
    inode = _server_inode(server_port, smtp.sock.getsockname()[1])
    wanted = f"socket:[{inode}]"
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == wanted:
                    return pid
            except OSError:
                continue
    raise AssertionError(f"no process of {pids} holds {wanted}")


def _greeted(port: int) -> Dialogue:
    smtp = Dialogue(port)
    assert smtp.reply().code == 220
    return smtp


def _start(servers: Servers, extra: str = "") -> tuple[Instance, list[int]]:
    instance = servers.start(f"{TWO_WORKERS}\n{extra}")
    return instance, _workers(instance.process.pid)


def test_mail_over_starttls_is_served_by_both_workers_in_turn(servers: Servers) -> None:
    instance, workers = _start(servers)
    port = instance.ports.smtp
    held = [_greeted(port) for _ in range(4)]
    try:
        holders = [_holder(smtp, port, workers) for smtp in held]
    finally:
        for smtp in held:
            smtp.close()
    assert set(holders) == set(workers)  # loopback is exempt from anvil: round-robin
    for n in range(3):
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.starttls(context=client_context())
            client.sendmail("s@client.example.net", [RCPT], f"Subject: w{n}\r\n\r\nhi\r\n")
    assert len(instance.process.wait_delivered(3)) == 3
    assert "ESMTPS" in instance.process.wait_delivered(3)[0].read_text()


def test_a_client_under_anvil_limits_always_meets_the_same_worker(servers: Servers) -> None:
    instance, workers = _start(
        servers,
        "smtpd_client_event_limit_exceptions =\nsmtpd_client_connection_count_limit = 2",
    )
    port = instance.ports.smtp
    first, second = _greeted(port), _greeted(port)
    try:
        assert _holder(first, port, workers) == _holder(second, port, workers)
        with Dialogue(port) as third:  # the count is exact: both are in one process
            refused = third.reply()
        assert refused.code == 421
        assert "too many connections from 127.0.0.1" in refused.text
    finally:
        first.close()
        second.close()
    instance.process.wait_log(r"Connection concurrency limit exceeded: 3 from localhost")


def test_a_crashed_worker_is_replaced_and_mail_still_flows(servers: Servers) -> None:
    instance, workers = _start(servers)
    os.kill(workers[0], signal.SIGKILL)
    instance.process.wait_log(rf"process mailseal.daemons.smtpd_worker pid {workers[0]} exit")
    replaced = _workers(instance.process.pid)
    assert workers[0] not in replaced
    assert workers[1] in replaced
    for n in range(4):  # every worker of the new set gets one
        with smtplib.SMTP("127.0.0.1", instance.ports.smtp, timeout=10) as client:
            client.sendmail("s@client.example.net", [RCPT], f"Subject: c{n}\r\n\r\nhi\r\n")
    assert len(instance.process.wait_delivered(4)) == 4


def test_reload_starts_a_new_generation_while_the_old_one_finishes(servers: Servers) -> None:
    instance, old = _start(servers)
    port = instance.ports.smtp
    with _greeted(port) as before:
        assert before.command("EHLO client.example.net").code == 250
        assert before.command("MAIL FROM:<s@client.example.net>").code == 250
        assert before.command(f"RCPT TO:<{RCPT}>").code == 250
        owner = _holder(before, port, old)
        assert run_mailseal("-c", str(instance.directory), "reload").returncode == 0
        instance.process.wait_log(r"reload -- version")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            current = _children(instance.process.pid)
            if owner in current and len(current) == 3:
                break
            time.sleep(0.1)
        with _greeted(port) as after:
            assert _holder(after, port, current) not in old
        assert before.command("DATA").code == 354
        before.send("Subject: finished by the old generation\r\n\r\nhi\r\n.\r\n")
        assert before.reply().code == 250
        assert before.command("QUIT").code == 221
    instance.process.wait_delivered(1)
    deadline = time.monotonic() + 20
    while owner in _children(instance.process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert owner not in _children(instance.process.pid)  # drained, then gone
    assert not set(old) & set(_workers(instance.process.pid))


def test_a_worker_idle_for_max_idle_after_serving_is_replaced_by_a_fresh_one(
    servers: Servers,
) -> None:
    """Its heap is given back; a busy worker and one that served nobody stay."""
    instance, workers = _start(servers, "max_idle = 1s")
    port = instance.ports.smtp
    with _greeted(port) as smtp:
        served = _holder(smtp, port, workers)
        (untouched,) = set(workers) - {served}
        time.sleep(2.5)  # over max_idle, but a session is open: it stays
        assert served in _children(instance.process.pid)
        assert smtp.command("EHLO client.example.net").code == 250
        assert smtp.command("MAIL FROM:<s@client.example.net>").code == 250
        assert smtp.command(f"RCPT TO:<{RCPT}>").code == 250
        assert smtp.command("DATA").code == 354
        smtp.send("Subject: the last one for this worker\r\n\r\nhi\r\n.\r\n")
        assert smtp.reply().code == 250
        assert smtp.command("QUIT").code == 221
    deadline = time.monotonic() + 20
    while served in _children(instance.process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    now = _workers(instance.process.pid)
    assert served not in now
    assert untouched in now  # it served no client: nothing to give back
    for n in range(2):  # the fresh one takes its turn
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.sendmail("s@client.example.net", [RCPT], f"Subject: f{n}\r\n\r\nhi\r\n")
    assert len(instance.process.wait_delivered(3)) == 3
    assert "exit status" not in instance.process.maillog()  # retired, not crashed


def test_stop_lets_a_message_in_flight_finish_and_takes_the_workers_down(
    servers: Servers,
) -> None:
    instance, workers = _start(servers)
    with _greeted(instance.ports.smtp) as smtp:
        smtp.command("EHLO client.example.net")
        smtp.command("MAIL FROM:<s@client.example.net>")
        smtp.command(f"RCPT TO:<{RCPT}>")
        assert smtp.command("DATA").code == 354
        instance.process.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        time.sleep(0.5)
        smtp.send("Subject: in flight at stop\r\n\r\nhi\r\n.\r\n")
        assert smtp.reply().code == 250
    assert instance.process.process.wait(30) == 0  # type: ignore[union-attr]
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or b"Z" in _state(pid)


def _state(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().split(b") ")[1][:1]
    except OSError:
        return b"Z"


def test_workers_leave_when_the_master_is_killed(tmp_path: Path) -> None:
    directory = tmp_path / "mailseal"
    make_instance(directory, TWO_WORKERS)
    process = MailsealProcess(directory).start()
    workers = _workers(process.pid)
    process.kill()
    deadline = time.monotonic() + 20
    alive = workers
    while alive and time.monotonic() < deadline:
        alive = [p for p in workers if Path(f"/proc/{p}").exists() and _state(p) != b"Z"]
        time.sleep(0.1)
    assert alive == []
    # The ports are the master's alone: a new master binds them at once.
    again = MailsealProcess(directory).start()
    try:
        assert len(_workers(again.pid)) == 2
    finally:
        again.stop()


@pytest.mark.parametrize("setting", ["smtpd_worker_processes = 1"])
def test_one_worker_means_sessions_in_the_master(servers: Servers, setting: str) -> None:
    instance = servers.start(setting)
    assert _children(instance.process.pid) == []
    with smtplib.SMTP("127.0.0.1", instance.ports.smtp, timeout=10) as client:
        client.sendmail("s@client.example.net", [RCPT], "Subject: m\r\n\r\nhi\r\n")
    instance.process.wait_delivered(1)


def test_log_lines_of_workers_reach_the_masters_metrics_and_json_log(servers: Servers) -> None:
    import json
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    from mailseal.testing.server import free_port

    port = free_port()
    instance, _ = _start(
        servers,
        f"metrics_listen_address = 127.0.0.1:{port}\n"
        f"maillog_json_file = {servers.root}/mailseal/log/maillog.json",
    )
    for n in range(4):
        with smtplib.SMTP("127.0.0.1", instance.ports.smtp, timeout=10) as client:
            client.starttls(context=client_context())
            client.sendmail("s@client.example.net", [RCPT], f"Subject: m{n}\r\n\r\nhi\r\n")
    instance.process.wait_delivered(4)
    instance.process.wait_log(r"disconnect from", count=4)

    def sessions() -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            text = answer.read().decode()
        return sum(
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "mailseal_smtpd_sessions_total" and s.labels.get("service") == "smtpd"
        )

    deadline = time.monotonic() + 15
    while sessions() < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sessions() == 4
    json_log = instance.directory / "log" / "maillog.json"
    records = [json.loads(line) for line in json_log.read_text(encoding="utf-8").splitlines()]
    smtpd_pids = {r["pid"] for r in records if r["program"] == "mailseal/smtpd"}
    text_smtpd = [
        line for line in instance.process.maillog().splitlines() if " mailseal/smtpd[" in line
    ]
    assert len([r for r in records if r["program"] == "mailseal/smtpd"]) == len(text_smtpd)
    assert len(smtpd_pids) == 4  # one session number each, from both workers


def test_a_tls_session_resumes_in_either_worker(servers: Servers) -> None:
    """The master's ticket keys are every worker's (Postfix's tlsmgr does this)."""
    import ssl

    instance, workers = _start(servers)
    port = instance.ports.smtp
    context = client_context()
    session: ssl.SSLSession | None = None
    holders: list[int] = []
    reused: list[bool] = []
    for _ in range(4):  # round-robin: the connections alternate between the workers
        smtp = _greeted(port)
        try:
            holders.append(_holder(smtp, port, workers))
            smtp.command("EHLO client.example.net")
            assert smtp.command("STARTTLS").code == 220
            tls = context.wrap_socket(smtp.sock, server_hostname=None, session=session)
            smtp.sock = tls
            assert smtp.command("EHLO client.example.net").code == 250  # ticket arrived
            reused.append(bool(tls.session_reused))
            session = tls.session
            assert smtp.command("QUIT").code == 221
        finally:
            smtp.close()
    assert set(holders) == set(workers)
    assert reused == [False, True, True, True]


def _runs_uvloop(pid: int) -> bool:
    """Whether uvloop's compiled loop is mapped into ``pid`` (it is imported only to run)."""
    return "/uvloop/loop." in Path(f"/proc/{pid}/maps").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("setting", "workers", "uvloop"),
    [
        (TWO_WORKERS, 2, True),
        (f"{TWO_WORKERS}\nevent_loop = asyncio", 2, False),
        ("smtpd_worker_processes = 1", 0, True),
        ("smtpd_worker_processes = 1\nevent_loop = asyncio", 0, False),
    ],
)
def test_sessions_run_on_the_event_loop_that_event_loop_names(
    servers: Servers, setting: str, workers: int, *, uvloop: bool
) -> None:
    """STARTTLS and wrapper mode (465) alike, in workers and in the master."""
    instance = servers.start(setting)
    pids = [instance.process.pid, *(_workers(instance.process.pid, workers) if workers else [])]
    for n in range(2):  # in each worker: round-robin
        with smtplib.SMTP("127.0.0.1", instance.ports.smtp, timeout=10) as client:
            client.starttls(context=client_context())
            client.sendmail("s@client.example.net", [RCPT], f"Subject: loop {n}\r\n\r\nhi\r\n")
    delivered = instance.process.wait_delivered(2)
    assert all("ESMTPS" in message.read_text() for message in delivered)
    port = instance.ports.smtps
    for _ in range(2):
        with smtplib.SMTP_SSL("127.0.0.1", port, context=client_context()) as client:
            assert client.ehlo()[0] == 250
            assert client.sock.version() == "TLSv1.3"  # type: ignore[union-attr]
    instance.process.wait_log(r"submissions/smtpd\[\d+\]: Anonymous TLS connection", count=2)
    assert [_runs_uvloop(pid) for pid in pids] == [uvloop] * len(pids)
