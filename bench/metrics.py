"""How long one Prometheus scrape of ``/metrics`` takes over many accounts.

Without options: renders a synthetic ``MetricsSnapshot`` of 10,000 accounts (on 50
instances, a few suspended, moved, gone or never measured, 50 instance rows, one round) and
prints, as the median of several runs after one warm-up:

- building the metric families (``FedimeterCollector.collect``), then the whole
  ``render_metrics`` (families and text), with the size of the text and its series;

With ``--database``: the same for a real database, plus reading the snapshot
(``read_snapshot``) and a whole ``GET /metrics`` through the app in this process (its lifespan
run, the render in a worker thread as when served). A path to an SQLite file that does not
exist yet is filled first with ``--accounts`` accounts, one sample each and one round, written
straight into the tables; a ``sqlite:///`` or ``postgresql://`` URL is read as it is.

    python bench/metrics.py                                 # synthetic, 10,000 accounts
    python bench/metrics.py --database /tmp/metrics.sqlite3 # and a real SQLite scrape
    python bench/metrics.py --accounts 1000 --runs 3        # smaller
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi.testclient import TestClient
from sqlalchemy import insert

from fedimeter.api import create_app
from fedimeter.config import Settings, normalise_database_url
from fedimeter.domain.models import AccountState, Handle
from fedimeter.metrics import FedimeterCollector, InstanceRow, MetricsSnapshot, render_metrics
from fedimeter.metrics.reading import read_snapshot
from fedimeter.storage.database import Database
from fedimeter.storage.records import AccountRecord, RunRecord, SampleRecord
from fedimeter.storage.repository import Repository
from fedimeter.storage.tables import account_samples, accounts, instances, runs

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

NOW = datetime(2026, 4, 1, 4, 0, tzinfo=UTC)
INSTANCES = 50
SEED = 20260401

_T = TypeVar("_T")


# --- output ----------------------------------------------------------------------------------


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """``rows`` under ``headers``, first column left-aligned and the others right-aligned."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        first, *rest = cells
        parts = [first.ljust(widths[0])]
        parts += [cell.rjust(width) for cell, width in zip(rest, widths[1:], strict=True)]
        return "  ".join(parts).rstrip()

    print(f"\n{title}")
    print(line(headers))
    print("  ".join("-" * width for width in widths))
    for row in rows:
        print(line(row))


def seconds(value: float) -> str:
    """``1.234 s`` or ``12.3 ms``."""
    return f"{value:.3f} s" if value >= 1 else f"{value * 1000:.1f} ms"


def timed(runs: int, call: Callable[[], _T]) -> tuple[list[float], _T]:
    """One warm-up call, then ``runs`` timed calls: their wall-clock seconds and the last result."""
    result = call()
    times = []
    for _ in range(runs):
        del result
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
    return times, result


def row(what: str, times: list[float], detail: str = "") -> list[str]:
    """A table row: the median and the fastest of ``times``."""
    return [what, seconds(statistics.median(times)), seconds(min(times)), detail]


# --- a synthetic snapshot --------------------------------------------------------------------


def _state(rng: random.Random) -> AccountState:
    roll = rng.random()
    if roll < 0.01:
        return AccountState.SUSPENDED
    if roll < 0.02:
        return AccountState.MOVED
    if roll < 0.03:
        return AccountState.GONE
    return AccountState.ACTIVE


def synthetic_snapshot(count: int) -> MetricsSnapshot:
    """``count`` accounts on ``INSTANCES`` hosts (1% never measured), one round, instance rows."""
    rng = random.Random(SEED)
    pairs: list[tuple[AccountRecord, SampleRecord | None]] = []
    for i in range(count):
        host = f"social{i % INSTANCES + 1}.example"
        record = AccountRecord(
            id=i + 1,
            handle=Handle(f"user{i:06d}", host),
            instance_id=i % INSTANCES + 1,
            instance_host=host,
            base_url=f"https://{host}",
            remote_id=str(100_000_000 + i),
            display_name=f"Person {i}",
            url=f"https://{host}/@user{i:06d}",
            state=_state(rng),
            moved_to=None,
            added_at=NOW - timedelta(days=400),
            state_changed_at=None,
            last_error=None,
            last_error_code=None,
            last_error_at=None,
            consecutive_failures=0,
        )
        sample = (
            None
            if rng.random() < 0.01
            else SampleRecord(
                account_id=i + 1,
                taken_at=NOW - timedelta(minutes=rng.randint(0, 59), seconds=rng.randint(0, 59)),
                followers=int(10 ** rng.uniform(0.5, 5.5)),
                following=rng.randint(0, 2000),
                statuses=rng.randint(0, 50_000),
                last_status_at=None if rng.random() < 0.03 else _last_post(rng),
                run_id=1,
            )
        )
        pairs.append((record, sample))
    ended = RunRecord(
        id=1,
        started_at=NOW - timedelta(hours=1),
        finished_at=NOW,
        heartbeat_at=NOW,
        status="finished",
        resumes_run_id=None,
        owner="bench:1",
        accounts_planned=count,
        accounts_measured=count,
        accounts_failed=0,
        requests=count // 40 + INSTANCES,
        rate_limited=0,
        rate_limit_wait_seconds=0.0,
        retries=0,
        error=None,
    )
    rows = [
        InstanceRow(
            host=f"social{i + 1}.example",
            software="mastodon",
            version="4.3.2",
            users=rng.randint(10, 100_000),
            statuses=rng.randint(100, 10_000_000),
            peers=rng.randint(100, 30_000),
            active_month=rng.randint(1, 10_000),
            active_halfyear=rng.randint(1, 20_000),
            week_statuses=rng.randint(0, 100_000),
            week_logins=rng.randint(0, 10_000),
            week_registrations=rng.randint(0, 500),
            measured_at=NOW,
        )
        for i in range(INSTANCES)
    ]
    return MetricsSnapshot(accounts=pairs, last_run=ended, last_finished_run=ended, instances=rows)


def _last_post(rng: random.Random) -> date:
    return (NOW - timedelta(days=rng.randint(0, 900))).date()


def measure_render(snapshot: MetricsSnapshot, runs: int, label: str) -> list[list[str]]:
    """Rows for building the families and rendering the text of ``snapshot``."""
    collector = FedimeterCollector(snapshot)
    families_times, families = timed(runs, lambda: list(collector.collect()))
    series = sum(len(f.samples) for f in families)
    del families
    render_times, text = timed(runs, lambda: render_metrics(snapshot))
    return [
        row(f"{label}: families (collect)", families_times, f"{series:,} series"),
        row(f"{label}: render_metrics", render_times, f"{len(text) / 2**20:.2f} MiB"),
    ]


# --- a real database -------------------------------------------------------------------------


def database_url(given: str) -> tuple[str, bool]:
    """The URL of ``given`` (a URL or an SQLite path) and whether it must be filled first."""
    if "://" in given:
        return normalise_database_url(given), False
    path = Path(given).expanduser().resolve()
    return normalise_database_url(f"sqlite:///{path}"), not path.exists()


async def fill(url: str, count: int) -> None:
    """Create the database and write ``count`` accounts, one sample each and one round."""
    snapshot = synthetic_snapshot(count)
    db = await Database.open(url)
    try:
        async with db.engine.begin() as conn:
            await conn.execute(
                insert(instances),
                [
                    {
                        "id": i + 1,
                        "host": f"social{i + 1}.example",
                        "base_url": f"https://social{i + 1}.example",
                        "software": "mastodon",
                        "version": "4.3.2",
                        "supports_batch": True,
                        "info_checked_at": NOW,
                        "added_at": NOW - timedelta(days=400),
                    }
                    for i in range(INSTANCES)
                ],
            )
            await conn.execute(
                insert(runs),
                [
                    {
                        "id": 1,
                        "started_at": NOW - timedelta(hours=1),
                        "finished_at": NOW,
                        "heartbeat_at": NOW,
                        "status": "finished",
                        "owner": "bench:1",
                        "accounts_planned": count,
                        "accounts_measured": count,
                    }
                ],
            )
            await conn.execute(insert(accounts), [_account_row(a) for a, _ in snapshot.accounts])
            await conn.execute(
                insert(account_samples),
                [_sample_row(s) for _, s in snapshot.accounts if s is not None],
            )
    finally:
        await db.close()


def _account_row(record: AccountRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "acct_key": record.handle.key,
        "username": record.handle.username,
        "domain": record.handle.domain,
        "instance_id": record.instance_id,
        "remote_id": record.remote_id,
        "display_name": record.display_name,
        "url": record.url,
        "state": record.state.value,
        "added_at": record.added_at,
        "state_changed_at": record.added_at,
        "consecutive_failures": 0,
    }


def _sample_row(sample: SampleRecord) -> dict[str, Any]:
    return {
        "account_id": sample.account_id,
        "taken_at": sample.taken_at,
        "followers": sample.followers,
        "following": sample.following,
        "statuses": sample.statuses,
        "last_status_at": sample.last_status_at,
        "run_id": sample.run_id,
    }


async def read_once(url: str, runs: int) -> tuple[list[float], MetricsSnapshot]:
    """Time ``read_snapshot`` on the database at ``url``."""
    db = await Database.open(url)
    try:
        repo = Repository(db)
        await read_snapshot(repo)
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            snapshot = await read_snapshot(repo)
            times.append(time.perf_counter() - started)
    finally:
        await db.close()
    return times, snapshot


def measure_database(url: str, runs: int) -> list[list[str]]:
    """Rows for reading, rendering and serving the database at ``url``."""
    read_times, snapshot = asyncio.run(read_once(url, runs))
    rows = [row("database: read_snapshot", read_times, f"{len(snapshot.accounts):,} accounts")]
    rows += measure_render(snapshot, runs, "database")
    app = create_app(Settings(database_url=url), schedule=False)
    with TestClient(app, client=("127.0.0.1", 50000)) as http:
        scrape_times, answer = timed(runs, lambda: http.get("/metrics"))
    if answer.status_code != 200:
        sys.exit(f"GET /metrics answered {answer.status_code}: {answer.text}")
    rows.append(row("database: GET /metrics", scrape_times, f"{len(answer.content):,} bytes"))
    return rows


# --- main ------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the options, measure, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--accounts", type=int, default=10_000, help="default 10,000")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per row, default 5")
    parser.add_argument(
        "--database",
        help="an SQLite path (filled first when it does not exist) or a database URL to scrape",
    )
    options = parser.parse_args(argv)
    rows = measure_render(synthetic_snapshot(options.accounts), options.runs, "synthetic")
    if options.database:
        url, empty = database_url(options.database)
        if empty:
            started = time.perf_counter()
            asyncio.run(fill(url, options.accounts))
            print(f"filled {url} in {seconds(time.perf_counter() - started)}")
        rows += measure_database(url, options.runs)
    print_table(
        f"/metrics over {options.accounts:,} accounts, {INSTANCES} instances"
        f" (median and fastest of {options.runs} runs after a warm-up)",
        ["what", "median", "fastest", "size"],
        rows,
    )


if __name__ == "__main__":
    main()
