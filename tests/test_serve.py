"""A real `fedimeter serve` process, driven over HTTP and stopped with SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from fedimeter.config import Settings
from fedimeter.simfedi import SimFediverse
from fedimeter.storage.database import Database
from fedimeter.storage.repository import Repository
from peers import smtp_server, webhook_receiver
from simhelpers import sample_count

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(settings: Settings, port: int, *args: str, **env: str) -> subprocess.Popen[bytes]:
    environment = dict(
        os.environ,
        FEDIMETER_DATABASE_URL=settings.database_url,
        FEDIMETER_ALLOW_PRIVATE_ADDRESSES="true",
        FEDIMETER_DEFAULT_SCHEME="http",
        FEDIMETER_PER_HOST_CONCURRENCY="1",
        **env,
    )
    return subprocess.Popen(
        [sys.executable, "-m", "fedimeter", "serve", "--port", str(port), *args],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.fixture
def port() -> int:
    """A free loopback port."""
    return _free_port()


def _wait_ready(http: httpx.Client, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            if http.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError("the server did not become ready")


async def _runs(url: str) -> list[tuple[str, int]]:
    db = await Database.open(url, migrate=False)
    try:
        return [(r.status, r.accounts_measured) for r in await Repository(db).list_runs()]
    finally:
        await db.close()


@pytest.fixture
def world() -> Iterator[SimFediverse]:
    """A slow simulated server with 30 accounts, so a round takes a couple of seconds."""
    sim = SimFediverse(seed=41)
    host = sim.add_instance("slow", version="4.1.0", rate_limit=None, latency=(0.05, 0.05))
    for i in range(30):
        host.add_account(f"u{i}", followers=i)
    with sim.run_in_thread():
        yield sim


def test_sigterm_mid_round_commits_and_exits_cleanly(
    settings: Settings, port: int, world: SimFediverse
) -> None:
    """SIGTERM during a round: exit 0, round interrupted with its samples kept, then resumed."""
    process = _serve(settings, port, "--no-schedule")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            _wait_ready(http, process)
            handles = [f"@{a.acct}" for a in world.instance("slow").accounts]
            for handle in handles:
                assert http.post("/api/v1/accounts", json={"handle": handle}).status_code == 201
            assert http.post("/api/v1/runs").status_code == 202
            deadline = time.monotonic() + 30
            while asyncio.run(sample_count(settings.database_url)) < 5:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, process.stderr.read() if process.stderr else ""
    [(status, measured)] = asyncio.run(_runs(settings.database_url))
    assert status == "interrupted"
    kept = asyncio.run(sample_count(settings.database_url))
    assert kept == measured  # every result the round received was committed
    assert 5 <= kept < 30
    finisher = subprocess.run(
        [sys.executable, "-m", "fedimeter", "collect", "--json"],
        env=dict(
            os.environ,
            FEDIMETER_DATABASE_URL=settings.database_url,
            FEDIMETER_ALLOW_PRIVATE_ADDRESSES="true",
            FEDIMETER_DEFAULT_SCHEME="http",
        ),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert finisher.returncode == 0, finisher.stderr
    assert asyncio.run(sample_count(settings.database_url)) == 30


def test_an_overdue_round_runs_at_start(settings: Settings, port: int, world: SimFediverse) -> None:
    """With a schedule and no round yet, the server collects as soon as it starts."""
    first = _serve(settings, port, "--no-schedule")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            _wait_ready(http, first)
            handle = f"@{world.instance('slow').accounts[0].acct}"
            assert http.post("/api/v1/accounts", json={"handle": handle}).status_code == 201
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=30)
    second = _serve(settings, port, FEDIMETER_SCHEDULE="6h")
    try:
        deadline = time.monotonic() + 30
        while asyncio.run(_runs(settings.database_url)) != [("finished", 1)]:
            assert time.monotonic() < deadline, asyncio.run(_runs(settings.database_url))
            time.sleep(0.05)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    assert second.returncode == 0


def test_refuses_a_public_interface_without_a_token(settings: Settings, port: int) -> None:
    """--host 0.0.0.0 without FEDIMETER_API_TOKEN: one line, exit 3, nothing listens."""
    result = subprocess.run(
        [sys.executable, "-m", "fedimeter", "serve", "--host", "0.0.0.0", "--port", str(port)],  # noqa: S104
        env=dict(os.environ, FEDIMETER_DATABASE_URL=settings.database_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3
    assert result.stderr.strip().startswith("error: refusing to listen on 0.0.0.0")
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_scheduled_round_delivers_the_daily_report(
    settings: Settings, port: int, world: SimFediverse
) -> None:
    """deliver=daily: after its first round the server sends the report by webhook and e-mail."""
    first = _serve(settings, port, "--no-schedule")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            _wait_ready(http, first)
            handle = f"@{world.instance('slow').accounts[0].acct}"
            assert http.post("/api/v1/accounts", json={"handle": handle}).status_code == 201
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=30)
    with webhook_receiver() as hook, smtp_server() as mail:
        second = _serve(
            settings,
            port,
            FEDIMETER_SCHEDULE="6h",
            FEDIMETER_DELIVER="daily",
            FEDIMETER_WEBHOOK_URL=f"{hook.url}/report",
            FEDIMETER_SMTP_HOST="127.0.0.1",
            FEDIMETER_SMTP_PORT=str(mail.port),
            FEDIMETER_SMTP_SECURITY="none",
            FEDIMETER_EMAIL_FROM="reports@example.org",
            FEDIMETER_EMAIL_TO="team@example.org",
        )
        try:
            deadline = time.monotonic() + 30
            while not (hook.received and mail.mailbox.messages):
                assert time.monotonic() < deadline, "no report was delivered"
                time.sleep(0.05)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=30)
    assert second.returncode == 0
    assert asyncio.run(_runs(settings.database_url)) == [("finished", 1)]
    body = json.loads(hook.received[0].body)
    assert body["text"].startswith("fedimeter report for ")
    assert [a["handle"] for a in body["report"]["accounts"]] == [handle.removeprefix("@")]
    assert mail.mailbox.messages[0].rcpt_tos == ["team@example.org"]
    assert len(hook.received) == 1
