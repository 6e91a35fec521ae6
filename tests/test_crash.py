"""SIGTERM during a round: the round is recorded as interrupted and the next one resumes it.

kill -9 at random moments, many times in a row, is reliability/crashes.py (run by
tests/test_reliability.py).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import text

from fedimeter.config import Settings
from fedimeter.simfedi import SimFediverse
from fedimeter.storage.database import Database
from fedimeter.storage.repository import Repository
from simhelpers import sample_count, sim_client, track

pytestmark = pytest.mark.slow

ACCOUNTS = 60
#: Latency per answer: 60 answers take 6 s one at a time, so the writer, which commits at most
#: once a second (collect.COMMIT_INTERVAL), commits about ten samples at a time and a kill
#: after 10 and after 30 samples lands mid-round.
LATENCY = (0.1, 0.1)


async def _setup(settings: Settings, world: SimFediverse) -> None:
    db = await Database.open(settings.database_url)
    try:
        async with sim_client(settings, world) as client:
            host = world.instance("host")
            await track(Repository(db), client, [host.account(f"u{i}") for i in range(ACCOUNTS)])
    finally:
        await db.close()


def _collector(settings: Settings) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        FEDIMETER_DATABASE_URL=settings.database_url,
        FEDIMETER_ALLOW_PRIVATE_ADDRESSES="true",
        FEDIMETER_DEFAULT_SCHEME="http",
        FEDIMETER_PER_HOST_CONCURRENCY="1",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "fedimeter", "collect", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _kill_after(
    settings: Settings, samples: int, sig: signal.Signals = signal.SIGKILL
) -> subprocess.Popen[bytes]:
    """Start a collector and send it ``sig`` once the database holds ``samples`` samples."""
    process = _collector(settings)
    deadline = time.monotonic() + 60
    try:
        while asyncio.run(sample_count(settings.database_url)) < samples:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the collector made no progress"
            time.sleep(0.02)
    finally:
        process.send_signal(sig)
        process.wait(timeout=30)
    return process


async def _check(url: str) -> tuple[list[str], dict[int, int], str]:
    db = await Database.open(url, migrate=False)
    try:
        repo = Repository(db)
        statuses = [r.status for r in reversed(await repo.list_runs())]
        counts = {}
        for account, _ in await repo.list_accounts():
            counts[account.id] = len(await repo.samples(account.id))
        async with db.connect() as conn:
            if db.dialect == "sqlite":
                integrity = (await conn.execute(text("PRAGMA integrity_check"))).scalar_one()
            else:
                orphans = (
                    await conn.execute(
                        text(
                            "SELECT count(*) FROM account_samples s"
                            " LEFT JOIN accounts a ON a.id = s.account_id WHERE a.id IS NULL"
                        )
                    )
                ).scalar_one()
                integrity = "ok" if orphans == 0 else f"{orphans} orphan samples"
        return statuses, counts, integrity
    finally:
        await db.close()


def test_sigterm_records_the_round_as_interrupted(settings: Settings) -> None:
    """SIGTERM stops a collector cleanly: exit 143, round interrupted, then resumed."""
    world = SimFediverse(seed=13)
    host = world.add_instance("host", version="4.1.0", rate_limit=None, latency=LATENCY)
    for i in range(ACCOUNTS):
        host.add_account(f"u{i}")
    with world.run_in_thread():
        asyncio.run(_setup(settings, world))
        stopped = _kill_after(settings, 10, signal.SIGTERM)
        assert stopped.stderr is not None
        assert stopped.returncode == 143
        assert stopped.stderr.read().decode().strip() == "terminated"
        statuses, _, _ = asyncio.run(_check(settings.database_url))
        assert statuses == ["interrupted"]
        finisher = _collector(settings)
        _, err = finisher.communicate(timeout=120)
    assert finisher.returncode == 0, err.decode()
    statuses, counts, integrity = asyncio.run(_check(settings.database_url))
    assert integrity == "ok"
    assert statuses == ["interrupted", "finished"]
    assert set(counts.values()) == {1}
