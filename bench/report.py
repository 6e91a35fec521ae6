"""How long a report over many accounts takes, on SQLite and PostgreSQL.

The issue's goal: a 30-day report over all 10,000 accounts in under 2 s. This builds a
database of N accounts (spread over 50 instances) with D + 31 days of daily samples each, at
least 61 (the report's follower trend reaches 30 days before ``until``; the older samples are
there, unread, as in a database that has been collecting for a while), then measures, as the
median of several runs after one warm-up:

- ``make_report`` over every account (storage read + compute), with the time Python's cycle
  collector took inside it, and the pieces it is made of: ``list_account_records``,
  ``histories`` and the pure ``build_report`` on preloaded histories;
- rendering that report in every format (text, markdown, csv, json, html);
- the peak of Python allocations (tracemalloc) during one ``make_report`` call.

Samples are written straight into the tables with SQLAlchemy Core in large executemany
batches (not through a collection round): the benchmark is about reading. PostgreSQL runs on a
throw-away server started from the installed binaries (``tests/pg.py``), on loopback only, and
stopped at the end. Nothing here asserts a time: it prints tables to compare runs by.

    python bench/report.py                               # 10,000 accounts, 30 days, SQLite
    python bench/report.py --backend both                # and PostgreSQL
    python bench/report.py --quick                       # 1,000 accounts: a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import json
import os
import platform
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy
from sqlalchemy import insert, text

from fedimeter.config import normalise_database_url
from fedimeter.domain.report import TREND_WINDOW, AccountHistory, Report, build_report
from fedimeter.domain.report_html import render_html
from fedimeter.domain.report_render import (
    render_csv,
    render_json,
    render_markdown,
    render_text,
)
from fedimeter.reporting import make_report
from fedimeter.storage.database import Database
from fedimeter.storage.repository import Repository
from fedimeter.storage.tables import account_samples, accounts, instances, runs

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator, Sequence

    from fedimeter.storage.records import AccountRecord, SampleRecord
    from pg import PostgresServer

GOAL_SECONDS = 2.0
GOAL_ACCOUNTS = 10_000
GOAL_DAYS = 30
INSTANCES = 50
#: Rows per executemany call while loading samples.
BATCH = 20_000
#: Fixed so runs compare: samples at 03:xx UTC every day, the report made an hour later.
NOW = datetime(2026, 4, 1, 4, 0, tzinfo=UTC)
SEED = 20260401

_T = TypeVar("_T")


# --- output ----------------------------------------------------------------------------------


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """``rows`` under ``headers``, first column left-aligned and the others right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

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


def mebibytes(value: float) -> str:
    """``123.4 MiB``."""
    return f"{value / 2**20:.1f} MiB"


# --- data ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shape:
    """What to build and how often to measure."""

    accounts: int
    days: int
    runs: int

    @property
    def sample_days(self) -> int:
        """Days of samples per account: the period, the trend window, and the day before."""
        return max(self.days, TREND_WINDOW.days) + 31


@dataclass
class Runs:
    """The wall-clock seconds of each timed run, and the collector's share of each."""

    wall: list[float] = field(default_factory=list)
    collector: list[float] = field(default_factory=list)


@dataclass
class Timings:
    """One backend's measurements, in seconds (bytes for memory)."""

    backend: str
    ingest_rows: int = 0
    ingest_seconds: float = 0.0
    database_bytes: int = 0
    version: str = ""
    make_report: Runs = field(default_factory=Runs)
    accounts: Runs = field(default_factory=Runs)
    histories: Runs = field(default_factory=Runs)
    wrap: Runs = field(default_factory=Runs)
    build_report: Runs = field(default_factory=Runs)
    render: dict[str, list[float]] = field(default_factory=dict)
    render_bytes: dict[str, int] = field(default_factory=dict)
    peak_bytes: int = 0
    samples_read: int = 0
    report_accounts: int = 0


def _instance_rows() -> list[dict[str, Any]]:
    return [
        {
            "id": i + 1,
            "host": f"social{i + 1}.example",
            "base_url": f"https://social{i + 1}.example",
            "software": "mastodon",
            "version": "4.3.0",
            "supports_batch": True,
            "info_checked_at": NOW,
            "added_at": NOW - timedelta(days=400),
        }
        for i in range(INSTANCES)
    ]


def _account_rows(count: int, rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    for i in range(count):
        instance = i % INSTANCES + 1
        username = f"user{i:06d}"
        domain = f"social{instance}.example"
        rows.append(
            {
                "id": i + 1,
                "acct_key": f"{username}@{domain}",
                "username": username,
                "domain": domain,
                "instance_id": instance,
                "remote_id": str(100_000_000 + i),
                # Some people set no display name; the renderers handle both.
                "display_name": "" if rng.random() < 0.2 else f"Person {i} ✨",
                "url": f"https://{domain}/@{username}",
                "state": "active",
                "added_at": NOW - timedelta(days=400),
                "state_changed_at": NOW - timedelta(days=400),
                "consecutive_failures": 0,
            }
        )
    return rows


def _run_rows(days: int) -> list[dict[str, Any]]:
    rows = []
    for day in range(days):
        started = _day(day, days)
        rows.append(
            {
                "id": day + 1,
                "started_at": started,
                "finished_at": started + timedelta(minutes=59),
                "heartbeat_at": started + timedelta(minutes=59),
                "status": "finished",
                "owner": "bench",
            }
        )
    return rows


def _day(index: int, days: int) -> datetime:
    """03:00 UTC of the ``index``-th of ``days`` days ending on NOW's day."""
    return NOW.replace(hour=3, minute=0) - timedelta(days=days - 1 - index)


def _sample_rows(shape: Shape, rng: random.Random) -> list[dict[str, Any]]:
    """Daily samples: growing, shrinking and flat accounts; some added late, some silent."""
    days = shape.sample_days
    rows: list[dict[str, Any]] = []
    for account in range(1, shape.accounts + 1):
        followers = int(10 ** rng.uniform(0.5, 5.5))
        following = rng.randint(0, 2000)
        statuses = rng.randint(0, 50_000)
        drift = rng.gauss(0.002, 0.01) * followers  # followers a day
        # 3% never posted; 20% stopped more than 30 days ago; the rest post now and then.
        roll = rng.random()
        last_post: date | None
        if roll < 0.03:
            last_post, statuses = None, 0
        elif roll < 0.23:
            last_post = (NOW - timedelta(days=rng.randint(31, 900))).date()
        else:
            last_post = (NOW - timedelta(days=rng.randint(0, 30) + days)).date()
        # 5% were added during the last 10 days (a partial line in the report).
        first = days - rng.randint(1, 10) if rng.random() < 0.05 else 0
        for day in range(first, days):
            if last_post is not None and rng.random() < 0.5:
                last_post = max(last_post, _day(day, days).date())
                statuses += rng.randint(1, 5)
            followers = max(0, followers + round(drift + rng.gauss(0, 1 + followers * 0.001)))
            following = max(0, following + rng.choice((-1, 0, 0, 0, 1)))
            rows.append(
                {
                    "account_id": account,
                    "taken_at": _day(day, days)
                    + timedelta(minutes=rng.randint(0, 58), seconds=rng.randint(0, 59)),
                    "followers": followers,
                    "following": following,
                    "statuses": statuses,
                    "last_status_at": last_post,
                    "run_id": day + 1,
                }
            )
    return rows


async def ingest(db: Database, shape: Shape, timings: Timings) -> None:
    """Fill the empty, migrated ``db`` in executemany batches; time the samples' insert."""
    rng = random.Random(SEED)
    samples = _sample_rows(shape, rng)
    async with db.engine.begin() as conn:
        await conn.execute(insert(instances), _instance_rows())
        await conn.execute(insert(accounts), _account_rows(shape.accounts, rng))
        await conn.execute(insert(runs), _run_rows(shape.sample_days))
    started = time.perf_counter()
    for offset in range(0, len(samples), BATCH):
        async with db.engine.begin() as conn:
            await conn.execute(insert(account_samples), samples[offset : offset + BATCH])
    timings.ingest_seconds = time.perf_counter() - started
    timings.ingest_rows = len(samples)
    async with db.engine.begin() as conn:
        # Fresh statistics, as a database that has been running for a while would have.
        await conn.execute(text("ANALYZE"))


# --- measuring -------------------------------------------------------------------------------


class CollectorClock:
    """Seconds spent in Python's cycle collector, from ``gc.callbacks``."""

    def __init__(self) -> None:
        """Install the callback; ``close`` removes it."""
        self.seconds = 0.0
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started

    def close(self) -> None:
        """Stop counting."""
        gc.callbacks.remove(self._callback)


async def timed(runs: int, call: Callable[[], Awaitable[_T]]) -> tuple[Runs, _T]:
    """One warm-up call, then ``runs`` timed calls; their times and the last result.

    The previous result is dropped before each call, as a server keeps no report between
    requests: holding one would make the cycle collector walk it during the next.
    """
    result = await call()
    measured = Runs()
    clock = CollectorClock()
    try:
        for _ in range(runs):
            del result
            clock.seconds = 0.0
            started = time.perf_counter()
            result = await call()
            measured.wall.append(time.perf_counter() - started)
            measured.collector.append(clock.seconds)
    finally:
        clock.close()
    return measured, result


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cycle collector off for the block, as ``make_report`` has it for its own work."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


RENDERERS: dict[str, Callable[[Report], str]] = {
    "text": render_text,
    "markdown": render_markdown,
    "csv": render_csv,
    # As `fedimeter report --format json` writes it.
    "json": lambda report: json.dumps(render_json(report), indent=2, ensure_ascii=False) + "\n",
    "html": render_html,
}


async def measure(repo: Repository, shape: Shape, timings: Timings) -> None:
    """Time the report, its pieces and its rendering; take its peak memory."""
    until = NOW
    since = until - timedelta(days=shape.days)

    async def report() -> Report:
        return await make_report(repo, since=since, until=until, now=NOW)

    timings.make_report, full = await timed(shape.runs, report)
    timings.report_accounts = full.account_count
    await measure_pieces(repo, shape, timings, full)
    # Rendering with the collector as usual: the renderers leave it alone.
    for name, renderer in RENDERERS.items():
        runs, output = await timed(shape.runs, _async(functools.partial(renderer, full)))
        timings.render[name] = runs.wall
        timings.render_bytes[name] = len(output.encode())
    del full, output
    tracemalloc.start()
    await report()
    timings.peak_bytes = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()


async def measure_pieces(repo: Repository, shape: Shape, timings: Timings, full: Report) -> None:
    """The same work as ``make_report``, piece by piece, with the collector paused as there."""
    until = NOW
    since = until - timedelta(days=shape.days)
    start = min(since, until - TREND_WINDOW)

    async def listing() -> list[AccountRecord]:
        with collector_paused():
            return await repo.list_account_records()

    async def load() -> dict[int, list[SampleRecord]]:
        with collector_paused():
            return await repo.histories(None, start, until)

    timings.accounts, chosen = await timed(shape.runs, listing)
    timings.histories, samples = await timed(shape.runs, load)
    timings.samples_read = sum(len(s) for s in samples.values())

    def wrap() -> list[AccountHistory]:
        with collector_paused():
            return [
                AccountHistory(
                    handle=a.handle.acct,
                    samples=samples.get(a.id, []),
                    display_name=a.display_name or None,
                )
                for a in chosen
            ]

    timings.wrap, histories = await timed(shape.runs, _async(wrap))

    def build() -> Report:
        with collector_paused():
            return build_report(histories, since=since, until=until, now=NOW)

    timings.build_report, built = await timed(shape.runs, _async(build))
    if built != full:
        sys.exit("build_report on preloaded histories differs from make_report: a bench bug")


def _async(call: Callable[[], _T]) -> Callable[[], Awaitable[_T]]:
    """``call`` as a coroutine function, for ``timed``."""

    async def wrapped() -> _T:
        return call()

    return wrapped


_SIZE_QUERIES = {
    "sqlite": "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
    "postgresql": "SELECT pg_database_size(current_database())",
}


async def bench_backend(backend: str, url: str, shape: Shape) -> Timings:
    """Build the database at ``url`` (empty), measure, and close it."""
    timings = Timings(backend=backend)
    db = await Database.open(normalise_database_url(url))
    try:
        async with db.engine.connect() as conn:
            query = "SELECT sqlite_version()" if backend == "sqlite" else "SHOW server_version"
            timings.version = str((await conn.execute(text(query))).scalar_one())
        await ingest(db, shape, timings)
        async with db.engine.connect() as conn:
            size = await conn.execute(text(_SIZE_QUERIES[backend]))
            timings.database_bytes = int(size.scalar_one())
        await measure(Repository(db), shape, timings)
    finally:
        await db.close()
    return timings


def run_sqlite(shape: Shape) -> Timings:
    """The benchmark on a new SQLite file in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="fedimeter-bench-") as folder:
        url = f"sqlite:///{Path(folder) / 'bench.sqlite3'}"
        return asyncio.run(bench_backend("sqlite", url, shape))


def _postgres() -> PostgresServer | None:
    """A throw-away server from tests/pg.py, or None without PostgreSQL binaries."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from pg import find_bindir, start_postgres  # noqa: PLC0415 - tests/ is not a package

    if find_bindir() is None:
        print(
            "PostgreSQL: no server binaries found (install postgresql, or set"
            " FEDIMETER_TEST_PG_BINDIR): skipped"
        )
        return None
    try:
        return start_postgres()
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        print(f"PostgreSQL: the server did not start ({exc}): skipped")
        return None


def run_postgresql(shape: Shape) -> Timings | None:
    """The benchmark on a throw-away PostgreSQL server; None when none can be started."""
    server = _postgres()
    if server is None:
        return None
    try:
        return asyncio.run(bench_backend("postgresql", server.url("postgres"), shape))
    finally:
        server.stop()


# --- report ----------------------------------------------------------------------------------


def _median(values: Sequence[float]) -> str:
    return seconds(statistics.median(values))


def _spread(values: Sequence[float]) -> str:
    return f"{seconds(min(values))} – {seconds(max(values))}"  # noqa: RUF001


def show(results: Sequence[Timings], shape: Shape) -> None:
    """Print the tables comparing ``results``."""
    names = [t.backend for t in results]
    print_table(
        "Database",
        ["", *names],
        [
            ["server version", *(t.version for t in results)],
            ["samples written", *(f"{t.ingest_rows:,}" for t in results)],
            ["ingest time", *(seconds(t.ingest_seconds) for t in results)],
            ["ingest rate", *(f"{t.ingest_rows / t.ingest_seconds:,.0f} rows/s" for t in results)],
            ["database size", *(mebibytes(t.database_bytes) for t in results)],
        ],
    )
    goal_applies = shape.accounts >= GOAL_ACCOUNTS and shape.days == GOAL_DAYS
    goal = f"< {GOAL_SECONDS:.0f} s" if goal_applies else f"(< {GOAL_SECONDS:.0f} s at 10,000)"
    rows = [
        ["make_report (all accounts)", *(_median(t.make_report.wall) for t in results), goal],
        ["  min – max", *(_spread(t.make_report.wall) for t in results), ""],  # noqa: RUF001
        ["  in the cycle collector", *(_median(t.make_report.collector) for t in results), ""],
        ["its pieces, one at a time:", *("" for _ in results), ""],
        ["  list_account_records", *(_median(t.accounts.wall) for t in results), ""],
        ["  histories (read samples)", *(_median(t.histories.wall) for t in results), ""],
        ["  wrap as AccountHistory", *(_median(t.wrap.wall) for t in results), ""],
        ["  build_report (pure)", *(_median(t.build_report.wall) for t in results), ""],
        ["samples read", *(f"{t.samples_read:,}" for t in results), ""],
        ["peak Python memory (tracemalloc)", *(mebibytes(t.peak_bytes) for t in results), ""],
    ]
    if goal_applies:
        medians = [statistics.median(t.make_report.wall) for t in results]
        rows.append(["goal met", *("yes" if m < GOAL_SECONDS else "NO" for m in medians), ""])
    print_table(
        f"Report over {shape.accounts:,} accounts, last {shape.days} days"
        f" (median of {shape.runs} runs after a warm-up)",
        ["", *names, "goal"],
        rows,
    )
    print_table(
        f"Rendering that report ({results[0].report_accounts:,} accounts; pure code)",
        ["format", *names, "output"],
        [
            [
                name,
                *(_median(t.render[name]) for t in results),
                f"{results[0].render_bytes[name] / 1024:,.0f} KiB",
            ]
            for name in RENDERERS
        ],
    )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    print(
        f"\nProcess peak RSS over the whole run (data generation and ingest included):"
        f" {mebibytes(rss)}"
    )


def parse(argv: Sequence[str] | None = None) -> tuple[Shape, list[str]]:
    """The shape to build and the backends to run, from the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--accounts", type=int, default=None, help="default 10,000 (quick 1,000)")
    parser.add_argument("--days", type=int, default=GOAL_DAYS, help="report period, default 30")
    parser.add_argument(
        "--backend",
        choices=["sqlite", "postgresql", "both"],
        default="sqlite",
        help="default sqlite",
    )
    parser.add_argument("--runs", type=int, default=3, help="timed runs per measurement, default 3")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1,000 accounts")
    args = parser.parse_args(argv)
    count = args.accounts or (1_000 if args.quick else GOAL_ACCOUNTS)
    if count < 1 or args.days < 1 or args.runs < 1:
        parser.error("--accounts, --days and --runs must be at least 1")
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    return Shape(accounts=count, days=args.days, runs=args.runs), backends


def print_environment(backends: Sequence[str]) -> None:
    """The versions, machine and load a run's figures come from; what PostgreSQL runs like."""
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"Python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__},"
        f" sqlite3 {sqlite3.sqlite_version}, {platform.machine()}, {os.cpu_count()} CPUs,"
        f" load average {load}"
    )
    if "postgresql" in backends:
        print(
            "PostgreSQL runs as tests/pg.py starts it (fsync and synchronous_commit off),"
            " so its ingest rate is an upper bound"
        )


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print its tables."""
    shape, backends = parse(argv)
    print(
        f"fedimeter report benchmark: {shape.accounts:,} accounts on {INSTANCES} instances,"
        f" {shape.sample_days} days of daily samples each, report over {shape.days} days"
    )
    print_environment(backends)
    results = []
    for backend in backends:
        print(f"\n[{backend}] building and measuring ...", flush=True)
        timings = run_sqlite(shape) if backend == "sqlite" else run_postgresql(shape)
        if timings is not None:
            results.append(timings)
    if results:
        show(results, shape)


if __name__ == "__main__":
    main()
