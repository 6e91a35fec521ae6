"""A year of daily samples in storage: ingest, size and the reads that touch it all.

Issue 6, benchmark 2: one year of daily samples for 10,000 accounts (3.65 M rows). This
builds, per backend, a database of N accounts (on 50 instances) with D days of daily samples
each, written in bulk, then measures:

- the bulk ingest rate and the database's size on disk (SQLite: the file and its WAL;
  PostgreSQL: ``pg_database_size``);
- one account's year, read through ``Repository.samples(account_id, since, until)``: the
  median (and 95th percentile) over many random accounts, one call each (goal < 20 ms);
- a 30-day report over every account (``make_report``, median of 3 after a warm-up; goal
  < 2 s), the same as ``bench/report.py`` measures but over a year-old database;
- ``Repository.list_accounts()``: every account with its latest sample, as ``fedimeter track
  list`` and ``/metrics`` read it;
- a ``/metrics`` scrape: ``read_snapshot`` then ``render_metrics``.

The samples are inserted day by day (every account's sample of a day, then the next day), as
daily collection rounds write them, so an account's year is spread over the table as it would
be in a real database, not stored contiguously. The building blocks (the rows, the timing, the
throw-away PostgreSQL server, the table printer) come from ``bench/report.py``. ``--profile``
prints where the time goes (cProfile) for each measurement that misses its goal, and the query
plans of ``list_accounts`` and of the report's ``histories``.

    python bench/storage.py                          # 10,000 accounts x 365 days, SQLite
    python bench/storage.py --backend both           # and a throw-away PostgreSQL on loopback
    python bench/storage.py --quick                  # 1,000 accounts x 365 days: a smoke run
    python bench/storage.py --keep /tmp/fm-bench     # keep the databases; reuse them next time

Building a year takes minutes; ``--keep DIR`` keeps the SQLite database in ``DIR`` (one file per
number of accounts and days) and measures an existing one instead of building it again; the
same for PostgreSQL's cluster, in a folder beside it, on a server started for the run. The
database is migrated on opening, as any fedimeter database is, so a new migration is measured
on it too.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy
from sqlalchemy import and_, func, insert, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent))

# bench/ is not a package: report.py is found through the path above.
from report import (
    BATCH,
    INSTANCES,
    NOW,
    SEED,
    Runs,
    Shape,
    _account_rows,
    _instance_rows,
    _postgres,
    _run_rows,
    _sample_rows,
    mebibytes,
    print_environment,
    print_table,
    seconds,
    timed,
)

from fedimeter.config import normalise_database_url
from fedimeter.domain.models import AccountState
from fedimeter.metrics import render_metrics
from fedimeter.metrics.reading import read_snapshot
from fedimeter.reporting import make_report
from fedimeter.storage.database import Database
from fedimeter.storage.repository import Repository
from fedimeter.storage.tables import account_samples, accounts, instances, runs

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

GOAL_YEAR_READ = 0.020
GOAL_REPORT = 2.0
GOAL_ACCOUNTS = 10_000
GOAL_DAYS = 365
REPORT_DAYS = 30
#: The report reads its 30 days and the 30 before ``until`` for its trend, plus one day.
MIN_DAYS = 61
#: Accounts whose samples are generated at a time (their rows are then kept compactly).
CHUNK = 500


# --- data ------------------------------------------------------------------------------------


def _samples_by_day(count: int, days: int) -> list[list[tuple[Any, ...]]]:
    """Every account's daily samples (report.py's generator), grouped by day, as tuples.

    ``_sample_rows`` makes one account's days after another; this runs it on chunks of
    accounts, renumbers them, and files each row under its day so they can be written day
    by day. Tuples rather than dicts keep 3.65 M rows in about a gigabyte.
    """
    # report.py's Shape has days + 31 days of samples for periods of 30 days or more.
    shape_days = days - 31
    by_day: list[list[tuple[Any, ...]]] = [[] for _ in range(days)]
    columns = [c.name for c in account_samples.columns]
    for first in range(0, count, CHUNK):
        size = min(CHUNK, count - first)
        rng = random.Random(SEED + first)
        for row in _sample_rows(Shape(accounts=size, days=shape_days, runs=1), rng):
            row["account_id"] += first
            by_day[row["run_id"] - 1].append(tuple(row[c] for c in columns))
    return by_day


async def ingest(db: Database, count: int, days: int, timings: Timings) -> None:
    """Fill the empty, migrated ``db`` day by day; time the samples' inserts only."""
    generated = time.perf_counter()
    by_day = _samples_by_day(count, days)
    timings.generate_seconds = time.perf_counter() - generated
    async with db.engine.begin() as conn:
        await conn.execute(insert(instances), _instance_rows())
        await conn.execute(insert(accounts), _account_rows(count, random.Random(SEED)))
        await conn.execute(insert(runs), _run_rows(days))
    columns = [c.name for c in account_samples.columns]
    batch: list[dict[str, Any]] = []
    written = 0

    async def flush() -> None:
        nonlocal batch
        started = time.perf_counter()
        async with db.engine.begin() as conn:
            await conn.execute(insert(account_samples), batch)
        timings.ingest_seconds += time.perf_counter() - started
        batch = []

    for day in by_day:
        batch.extend(dict(zip(columns, row, strict=True)) for row in day)
        written += len(day)
        if len(batch) >= BATCH:
            await flush()
    if batch:
        await flush()
    timings.ingest_rows = written
    del by_day
    started = time.perf_counter()
    if timings.backend == "postgresql":
        # A database that has been collecting for a year has been vacuumed by autovacuum.
        async with db.engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await auto.execute(text("VACUUM ANALYZE"))
    else:
        async with db.engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
    timings.analyze_seconds = time.perf_counter() - started


# --- measuring -------------------------------------------------------------------------------


@dataclass
class Timings:
    """One backend's measurements, in seconds."""

    backend: str
    version: str = ""
    ingest_rows: int = 0
    generate_seconds: float = 0.0
    ingest_seconds: float = 0.0
    analyze_seconds: float = 0.0
    database_bytes: int = 0
    size_detail: str = ""
    year_reads: list[float] = field(default_factory=list)
    year_rows: int = 0
    report: Runs = field(default_factory=Runs)
    report_accounts: int = 0
    list_accounts: Runs = field(default_factory=Runs)
    listed: int = 0
    snapshot: Runs = field(default_factory=Runs)
    render: Runs = field(default_factory=Runs)
    scrape: Runs = field(default_factory=Runs)
    scrape_bytes: int = 0
    profiles: dict[str, str] = field(default_factory=dict)
    plan: str = ""
    report_plan: str = ""
    seek: Runs = field(default_factory=Runs)
    seek_plan: str = ""
    seek_same: bool = False


@dataclass(frozen=True, slots=True)
class Options:
    """What to build and measure, from the command line."""

    accounts: int
    days: int
    reads: int
    runs: int
    profile: bool
    #: Where the SQLite database is kept between runs; None for a temporary one.
    keep: Path | None = None


async def measure(repo: Repository, opts: Options, timings: Timings) -> None:
    """Every measurement on the built database."""
    until = NOW
    year_since = until - timedelta(days=opts.days)
    rng = random.Random(SEED)
    chosen = [rng.randint(1, opts.accounts) for _ in range(opts.reads)]
    for account_id in chosen[:5]:  # warm-up: connections, statement caches
        await repo.samples(account_id, year_since, until)
    rows = 0
    for account_id in chosen:
        started = time.perf_counter()
        got = await repo.samples(account_id, year_since, until)
        timings.year_reads.append(time.perf_counter() - started)
        rows += len(got)
    timings.year_rows = rows // len(chosen)

    async def report() -> Any:  # noqa: ANN401 - a Report; only its account count is read
        return await make_report(
            repo, since=until - timedelta(days=REPORT_DAYS), until=until, now=NOW
        )

    timings.report, built = await timed(opts.runs, report)
    timings.report_accounts = built.account_count
    del built

    async def listing() -> list[Any]:
        return await repo.list_accounts()

    timings.list_accounts, listed = await timed(opts.runs, listing)
    timings.listed = len(listed)
    del listed

    async def snapshot() -> Any:  # noqa: ANN401 - a MetricsSnapshot
        return await read_snapshot(repo)

    timings.snapshot, snap = await timed(opts.runs, snapshot)

    async def render() -> bytes:
        return render_metrics(snap)

    timings.render, _ = await timed(opts.runs, render)

    async def scrape() -> bytes:
        return render_metrics(await read_snapshot(repo))

    timings.scrape, body = await timed(opts.runs, scrape)
    timings.scrape_bytes = len(body)

    if opts.profile:
        await profile(repo, opts, timings, {"list_accounts": listing, "/metrics scrape": scrape})


async def profile(
    repo: Repository,
    opts: Options,
    timings: Timings,
    calls: dict[str, Callable[[], Awaitable[Any]]],
) -> None:
    """cProfile ``calls``, and the year read and report when they miss their goals."""
    until = NOW
    year_since = until - timedelta(days=opts.days)
    ids = random.Random(SEED).sample(range(1, opts.accounts + 1), min(50, opts.accounts))
    missed = dict(calls)
    if statistics.median(timings.year_reads) >= GOAL_YEAR_READ:
        missed[f"{len(ids)} samples() year reads"] = lambda: _year_reads(repo, ids, year_since)
    if statistics.median(timings.report.wall) >= GOAL_REPORT:
        missed["make_report"] = lambda: make_report(
            repo, since=until - timedelta(days=REPORT_DAYS), until=until, now=NOW
        )
    for name, call in missed.items():
        timings.profiles[name] = await _profile(call)
    timings.plan = await _plan(repo, timings.backend, repo.list_accounts, "max(newest.taken_at)")
    timings.report_plan = await _plan(
        repo,
        timings.backend,
        lambda: repo.histories(None, until - timedelta(days=REPORT_DAYS), until),
        "FROM account_samples",
    )
    await what_if_seek(repo, opts, timings)


def _latest_by_seek() -> Any:  # noqa: ANN401 - a Select
    """``list_accounts``' rows with each latest sample found by an index seek per account.

    Not fedimeter's statement: an experiment for the lead. ``max(taken_at)`` correlated with
    the account is answered from the (account_id, taken_at) primary key, one seek per
    account, instead of grouping every sample of the table.
    """
    inner = account_samples.alias("newest")
    newest = (
        select(func.max(inner.c.taken_at))
        .where(inner.c.account_id == accounts.c.id)
        .correlate(accounts)
        .scalar_subquery()
    )
    states = [s.value for s in AccountState if s is not AccountState.UNTRACKED]
    return (
        select(accounts, instances.c.host, instances.c.base_url, account_samples)
        .join(instances, instances.c.id == accounts.c.instance_id)
        .outerjoin(
            account_samples,
            and_(
                account_samples.c.account_id == accounts.c.id, account_samples.c.taken_at == newest
            ),
        )
        .where(accounts.c.state.in_(states))
        .order_by(accounts.c.acct_key)
    )


async def what_if_seek(repo: Repository, opts: Options, timings: Timings) -> None:
    """Time ``_latest_by_seek`` (rows fetched, not built into records) and check its answer."""
    stmt = _latest_by_seek()

    async def fetch() -> list[Any]:
        async with repo.db.engine.connect() as conn:
            return list(await conn.execute(stmt))

    timings.seek, rows = await timed(opts.runs, fetch)
    mapping = [r._mapping for r in rows]  # noqa: SLF001
    got = [(m[accounts.c.id], m[account_samples.c.taken_at]) for m in mapping]
    listed = await repo.list_accounts()
    want = [(a.id, None if s is None else s.taken_at) for a, s in listed]
    timings.seek_same = got == want
    async with repo.db.engine.connect() as conn:
        compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
        explain = "EXPLAIN QUERY PLAN" if timings.backend == "sqlite" else "EXPLAIN ANALYZE"
        plan = await conn.execute(text(f"{explain} {compiled}"))
        timings.seek_plan = "\n".join(str(row[-1]) for row in plan)


async def _year_reads(repo: Repository, ids: Sequence[int], since: Any) -> None:  # noqa: ANN401
    for account_id in ids:
        await repo.samples(account_id, since, NOW)


async def _profile(call: Callable[[], Awaitable[Any]], top: int = 18) -> str:
    """The ``top`` functions by cumulative time in one ``call``."""
    profiler = cProfile.Profile()
    profiler.enable()
    await call()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    lines = out.getvalue().splitlines()
    # Drop pstats' preamble up to the column headers.
    start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
    return "\n".join(line.rstrip() for line in lines[start:] if line.strip())


async def _plan(
    repo: Repository, backend: str, call: Callable[[], Awaitable[Any]], marker: str
) -> str:
    """The database's plans for the statements ``call`` sends that contain ``marker``.

    With run times on PostgreSQL.
    """
    # The statement as the dialect compiled it, with its parameters.
    captured: list[tuple[str, Any]] = []

    def capture(
        _conn: Any,  # noqa: ANN401
        _cursor: Any,  # noqa: ANN401
        statement: str,
        parameters: Any,  # noqa: ANN401
        _context: Any,  # noqa: ANN401
        _many: bool,  # noqa: FBT001
    ) -> None:
        if marker in statement:
            captured.append((statement, parameters))

    sync_engine = repo.db.engine.sync_engine
    sqlalchemy.event.listen(sync_engine, "before_cursor_execute", capture)
    try:
        await call()
    finally:
        sqlalchemy.event.remove(sync_engine, "before_cursor_execute", capture)
    if not captured:
        return "(statement not captured)"
    plans = []
    async with repo.db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        for statement, params in captured:
            if backend == "sqlite":
                cursor = await driver.execute(f"EXPLAIN QUERY PLAN {statement}", params)
                plans.append("\n".join(str(row[-1]) for row in await cursor.fetchall()))
            else:  # asyncpg: $1, $2 ... placeholders, parameters as a tuple.
                plan = await driver.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", *params)
                plans.append("\n".join(str(row[0]) for row in plan))
    return "\n--\n".join(plans)


def _sqlite_size(path: Path) -> tuple[int, str]:
    wal = path.with_name(path.name + "-wal")
    main = path.stat().st_size
    log = wal.stat().st_size if wal.exists() else 0
    return main + log, f"file {mebibytes(main)} + WAL {mebibytes(log)}"


async def bench_backend(
    backend: str, url: str, opts: Options, path: Path | None, *, build: bool = True
) -> Timings:
    """Build the database at ``url`` (empty) unless ``build`` is false, measure, and close it."""
    timings = Timings(backend=backend)
    db = await Database.open(normalise_database_url(url))
    try:
        async with db.engine.connect() as conn:
            query = "SELECT sqlite_version()" if backend == "sqlite" else "SHOW server_version"
            timings.version = str((await conn.execute(text(query))).scalar_one())
            if not build:
                count = await conn.execute(select(func.count()).select_from(account_samples))
                timings.ingest_rows = int(count.scalar_one())
        if build:
            await ingest(db, opts.accounts, opts.days, timings)
        if path is not None:
            timings.database_bytes, timings.size_detail = _sqlite_size(path)
        else:
            async with db.engine.connect() as conn:
                size = await conn.execute(text("SELECT pg_database_size(current_database())"))
                timings.database_bytes = int(size.scalar_one())
                table = await conn.execute(
                    text(
                        "SELECT pg_table_size('account_samples'),"
                        " pg_indexes_size('account_samples')"
                    )
                )
                heap, index = table.one()
                timings.size_detail = f"samples {mebibytes(heap)} + indexes {mebibytes(index)}"
        if build:
            print(
                f"  {timings.ingest_rows:,} samples written in {seconds(timings.ingest_seconds)}"
                f" (generated in {seconds(timings.generate_seconds)}); measuring ...",
                flush=True,
            )
        else:
            print(
                f"  {timings.ingest_rows:,} samples in the kept database; measuring ...", flush=True
            )
        await measure(Repository(db), opts, timings)
        if path is not None:  # the WAL may have grown while reading (checkpoints)
            timings.database_bytes, timings.size_detail = _sqlite_size(path)
    finally:
        await db.close()
    return timings


def run_sqlite(opts: Options) -> Timings:
    """The benchmark on a new SQLite file in a temporary folder, or on the kept one."""
    if opts.keep is None:
        with tempfile.TemporaryDirectory(prefix="fedimeter-bench-") as folder:
            path = Path(folder) / "bench.sqlite3"
            return asyncio.run(bench_backend("sqlite", f"sqlite:///{path}", opts, path))
    opts.keep.mkdir(parents=True, exist_ok=True)
    path = opts.keep / f"storage-{opts.accounts}x{opts.days}.sqlite3"
    if path.exists():
        return asyncio.run(bench_backend("sqlite", f"sqlite:///{path}", opts, path, build=False))
    # Built under another name and renamed once complete: an interrupted build is not kept.
    building = path.with_name(path.name + ".building")
    for leftover in opts.keep.glob(building.name + "*"):
        leftover.unlink()
    timings = asyncio.run(bench_backend("sqlite", f"sqlite:///{building}", opts, building))
    building.rename(path)
    return timings


def run_postgresql(opts: Options) -> Timings | None:
    """The benchmark on a throw-away PostgreSQL server, or on the kept one; None without one."""
    if opts.keep is not None:
        return _run_kept_postgresql(opts, opts.keep / f"postgresql-{opts.accounts}x{opts.days}")
    server = _postgres()
    if server is None:
        return None
    try:
        return asyncio.run(bench_backend("postgresql", server.url("postgres"), opts, None))
    finally:
        server.stop()


def _pg_ctl(bindir: Path, as_user: list[str], *args: str) -> None:
    command = [*as_user, str(bindir / "pg_ctl"), *args]
    subprocess.run(command, check=True, capture_output=True)  # noqa: S603 - our own binaries


def _run_kept_postgresql(opts: Options, folder: Path) -> Timings | None:
    """The benchmark on a server whose cluster lives in ``folder``: built once, then reused.

    Set up as ``tests/pg.py`` sets up the throw-away one (loopback, fsync off), on a free port;
    the cluster counts as built once ``folder/built`` exists.
    """
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from pg import find_bindir  # noqa: PLC0415 - tests/ is not a package

    bindir = find_bindir()
    if bindir is None:
        print("PostgreSQL: no server binaries found: skipped")
        return None
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    datadir = folder / "data"
    built = (folder / "built").exists()
    if not built:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        if as_user:
            shutil.chown(folder, "postgres", "postgres")
        subprocess.run(  # noqa: S603 - the installed PostgreSQL binaries
            [
                *as_user,
                str(bindir / "initdb"),
                "-D",
                str(datadir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
        )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    options = (
        f"-c port={port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={folder}"
        " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    log = str(folder / "log")
    _pg_ctl(bindir, as_user, "-D", str(datadir), "-o", options, "-l", log, "-w", "start")
    try:
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        timings = asyncio.run(bench_backend("postgresql", url, opts, None, build=not built))
        (folder / "built").touch()
        return timings
    finally:
        _pg_ctl(bindir, as_user, "-D", str(datadir), "-m", "fast", "stop")


# --- report ----------------------------------------------------------------------------------


def _median(values: Sequence[float]) -> str:
    return seconds(statistics.median(values))


def _percentile(values: Sequence[float], q: int) -> str:
    return seconds(statistics.quantiles(values, n=100)[q - 1]) if len(values) > 1 else "-"


def _met(value: float, goal: float) -> str:
    return "met" if value < goal else "MISSED"


def show(results: Sequence[Timings], opts: Options) -> None:
    """Print the tables comparing ``results``."""
    names = [t.backend for t in results]
    print_table(
        "Database",
        ["", *names],
        [
            ["server version", *(t.version for t in results)],
            ["samples written", *(f"{t.ingest_rows:,}" for t in results)],
            ["ingest time (inserts only)", *(_built(t, t.ingest_seconds) for t in results)],
            ["ingest rate", *(_rate(t) for t in results)],
            [
                "ANALYZE (PostgreSQL: VACUUM ANALYZE)",
                *(_built(t, t.analyze_seconds) for t in results),
            ],
            ["database size on disk", *(mebibytes(t.database_bytes) for t in results)],
            ["  of which", *(t.size_detail for t in results)],
            [
                "  per sample",
                *(f"{t.database_bytes / max(t.ingest_rows, 1):.0f} B" for t in results),
            ],
        ],
    )
    full = opts.accounts >= GOAL_ACCOUNTS and opts.days >= GOAL_DAYS

    def goal(text: str) -> str:
        return text if full else f"({text} at full size)"

    rows = [
        [
            f"samples(): one account's {opts.days} days, median",
            *(_median(t.year_reads) for t in results),
            goal("< 20 ms"),
        ],
        ["  95th percentile", *(_percentile(t.year_reads, 95) for t in results), ""],
        ["  fastest - slowest", *(_spread(t.year_reads) for t in results), ""],
        ["  samples per read", *(f"{t.year_rows:,}" for t in results), ""],
        [
            f"make_report, {REPORT_DAYS} days, all accounts",
            *(_median(t.report.wall) for t in results),
            goal("< 2 s"),
        ],
        ["  fastest - slowest", *(_spread(t.report.wall) for t in results), ""],
        ["  accounts in the report", *(f"{t.report_accounts:,}" for t in results), ""],
        [
            "list_accounts() (latest sample each)",
            *(_median(t.list_accounts.wall) for t in results),
            "no goal",
        ],
        ["  fastest - slowest", *(_spread(t.list_accounts.wall) for t in results), ""],
        ["  accounts listed", *(f"{t.listed:,}" for t in results), ""],
        [
            "/metrics: read_snapshot + render_metrics",
            *(_median(t.scrape.wall) for t in results),
            "no goal",
        ],
        ["  read_snapshot alone", *(_median(t.snapshot.wall) for t in results), ""],
        ["  render_metrics alone", *(_median(t.render.wall) for t in results), ""],
        ["  exposition size", *(mebibytes(t.scrape_bytes) for t in results), ""],
    ]
    if full:
        rows.append(
            [
                "goals: year read / report",
                *(
                    f"{_met(statistics.median(t.year_reads), GOAL_YEAR_READ)}"
                    f" / {_met(statistics.median(t.report.wall), GOAL_REPORT)}"
                    for t in results
                ),
                "",
            ]
        )
    print_table(
        f"Reads over {opts.accounts:,} accounts x {opts.days} days"
        f" (samples(): {opts.reads} random accounts, one call each; the others: median of"
        f" {opts.runs} runs after a warm-up)",
        ["", *names, "goal"],
        rows,
    )
    for t in results:
        if t.plan:
            print(f"\n[{t.backend}] list_accounts' query plan:\n{t.plan}")
        if t.report_plan:
            print(f"\n[{t.backend}] the report's query plan (histories):\n{t.report_plan}")
        if t.seek.wall:
            print(
                f"\n[{t.backend}] what if: the same rows with the latest sample found by one"
                f" index seek per account (a correlated max(taken_at); statement run and rows"
                f" fetched, no records built): {_median(t.seek.wall)} (median of {opts.runs});"
                f" same accounts and samples as list_accounts: {'yes' if t.seek_same else 'NO'}."
                f" Its plan:\n{t.seek_plan}"
            )
        for name, profile in t.profiles.items():
            print(f"\n[{t.backend}] cProfile of one {name} (by cumulative time):\n{profile}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    print(f"\nProcess peak RSS (data generation included): {mebibytes(rss)}")


def _built(timings: Timings, value: float) -> str:
    return seconds(value) if timings.ingest_seconds else "(kept database)"


def _rate(timings: Timings) -> str:
    if not timings.ingest_seconds:
        return "(kept database)"
    return f"{timings.ingest_rows / timings.ingest_seconds:,.0f} rows/s"


def _spread(values: Sequence[float]) -> str:
    return f"{seconds(min(values))} - {seconds(max(values))}"


def parse(argv: Sequence[str] | None = None) -> tuple[Options, list[str]]:
    """What to build and the backends to run, from the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--accounts", type=int, default=None, help="default 10,000 (quick 1,000)")
    parser.add_argument("--days", type=int, default=GOAL_DAYS, help="days of samples, default 365")
    parser.add_argument(
        "--backend",
        choices=["sqlite", "postgresql", "both"],
        default="sqlite",
        help="default sqlite",
    )
    parser.add_argument("--reads", type=int, default=None, help="single-account reads (200)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of the others, default 3")
    parser.add_argument("--profile", action="store_true", help="cProfile and query plans")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1,000 accounts")
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="keep the SQLite database in DIR and reuse it in later runs",
    )
    args = parser.parse_args(argv)
    count = args.accounts or (1_000 if args.quick else GOAL_ACCOUNTS)
    reads = args.reads or (50 if args.quick else 200)
    if count < 1 or args.runs < 1 or reads < 2:
        parser.error("--accounts and --runs must be at least 1, --reads at least 2")
    if args.days < MIN_DAYS:
        parser.error(f"--days must be at least {MIN_DAYS} (the report reads {MIN_DAYS} days)")
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    opts = Options(
        accounts=count,
        days=args.days,
        reads=reads,
        runs=args.runs,
        profile=args.profile,
        keep=args.keep,
    )
    return opts, backends


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print its tables."""
    opts, backends = parse(argv)
    print(
        f"fedimeter storage benchmark: {opts.accounts:,} accounts on {INSTANCES} instances,"
        f" {opts.days} days of daily samples each (up to {opts.accounts * opts.days:,} rows:"
        " 5% of the accounts were added in the last 10 days), written day by day"
    )
    print_environment(backends)
    results = []
    for backend in backends:
        print(f"\n[{backend}] building and measuring ...", flush=True)
        started = time.perf_counter()
        timings = run_sqlite(opts) if backend == "sqlite" else run_postgresql(opts)
        if timings is not None:
            print(f"  done in {seconds(time.perf_counter() - started)}", flush=True)
            results.append(timings)
    if results:
        show(results, opts)


if __name__ == "__main__":
    main()
