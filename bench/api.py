"""The API under load: requests per second and latency of the samples and report routes.

Issue 6, benchmark 3. This builds, per backend, a database of N accounts (on 50 instances)
with D days of daily samples each, written day by day as rounds write them (the generator and
ingest of ``bench/storage.py``), then starts the real server as a user would: ``python -m
fedimeter serve --no-schedule`` in a process of its own on 127.0.0.1 and a free port, with a
read token set (so every request goes through the access check), no configuration file and no
collection (``--no-schedule``: the server contacts nothing). A load generator in this process
then drives one route at a time:

- the samples routes: one account's samples over 30 days and over the whole history as JSON,
  the whole history as CSV, and mastodon-meter's ``/api/{id}/data`` over the whole history;
- the report routes: the 30-day report of one account (``/api/v1/report?account_id=``),
  mastodon-meter's text report of one account (``/api/report?accounts=``), and the heavy
  ones over every account: the 30-day JSON report and mastodon-meter's text report, with
  low concurrency and a fixed, small number of requests;
- the 30-day samples route again while all-accounts reports are made one after the other, to
  show what a report does to the latency of everything else.

Each request names a random account, and a period ending on the data's last day (so the
figures do not depend on today's date). A light route runs for ``--duration`` seconds at each
``--concurrency`` (after ``--warmup`` seconds of the same load, discarded); a heavy one for
``--heavy-requests`` requests after one warm-up request. Every answer other than 2xx counts as
an error and is shown.

The generator is closed-loop: N connections (keep-alive), each sending its next request when
the previous answer is read, with httpx. Its own CPU is printed beside the server's: on a
machine with two cores the two processes can each have one, and the generator needs a
fraction of what the server does per request, so it is not what limits the figures. (wrk would
need a Lua script for the random ids and the token, and a package; this needs none.) The
server's CPU is read from /proc before and after each run, its memory too; on PostgreSQL also
the CPU of the database server's processes, which SQLite spends inside the server process.

``--profile DIR`` then runs each route once more with py-spy (``pip install py-spy``) sampling
the server, saves the collapsed stacks in DIR and prints the functions where the server spent
its time. Nothing here asserts a time: it prints tables to compare runs by.

    python bench/api.py                                  # 10,000 accounts x 365 days, SQLite
    python bench/api.py --backend both                   # and a throw-away PostgreSQL
    python bench/api.py --database /tmp/api.sqlite3      # keep the SQLite file, reuse it next time
    python bench/api.py --quick                          # 1,000 accounts, short runs: a smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import importlib.util
import inspect
import math
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import aiosqlite.core
import httpx
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent))

# bench/ is not a package: report.py and storage.py are found through the path above.
from report import INSTANCES, NOW, SEED, _postgres, mebibytes, print_environment, print_table
from storage import MIN_DAYS, Timings, ingest

from fedimeter.config import normalise_database_url
from fedimeter.storage.database import Database
from fedimeter.storage.tables import account_samples, accounts

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

GOAL_ACCOUNTS = 10_000
GOAL_DAYS = 365
#: Seconds to wait for the server to answer /readyz.
START_TIMEOUT = 60.0
#: Seconds one request may take before it counts as an error.
REQUEST_TIMEOUT = 300.0
#: Characters of an error answer kept to show.
ERROR_SNIPPET = 160
_TICKS = os.sysconf("SC_CLK_TCK")


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the routes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """A kind of request: ``path(rng)`` makes one (a random account where it names one)."""

    name: str
    path: Callable[[random.Random], str]
    heavy: bool = False


def routes(count: int, days: int) -> list[Route]:
    """The routes measured, over ``count`` accounts with ``days`` days of samples."""
    until = _iso(NOW)
    month = _iso(NOW - timedelta(days=30))
    history = _iso(NOW - timedelta(days=days))
    window = f"since={month}&until={until}"
    whole = f"since={history}&until={until}"

    def account(rng: random.Random) -> int:
        return rng.randint(1, count)

    return [
        Route(
            "samples, 30 days, JSON",
            lambda r: f"/api/v1/accounts/{account(r)}/samples?{window}",
        ),
        Route(
            f"samples, {days} days, JSON",
            lambda r: f"/api/v1/accounts/{account(r)}/samples?{whole}",
        ),
        Route(
            f"samples, {days} days, CSV",
            lambda r: f"/api/v1/accounts/{account(r)}/samples?{whole}&format=csv",
        ),
        Route(
            f"mastodon-meter /data, {days} days",
            lambda r: f"/api/{account(r)}/data?since={history}&to={until}",
        ),
        Route(
            "report, one account, 30 days, JSON",
            lambda r: f"/api/v1/report?account_id={account(r)}&period=30d&until={until}",
        ),
        Route(
            "mastodon-meter /report, one account",
            lambda r: f"/api/report?accounts={account(r)}",
        ),
        Route(
            "report, all accounts, 30 days, JSON",
            lambda _r: f"/api/v1/report?period=30d&until={until}",
            heavy=True,
        ),
        Route("mastodon-meter /report, all accounts", lambda _r: "/api/report", heavy=True),
        # The dashboard's pages (HTML), cached overview rows sorted, filtered and paged.
        Route("dashboard: accounts, first page", lambda _r: "/"),
        Route(
            "dashboard: accounts by 7-day change, a random page",
            lambda r: f"/?sort=change_7&page={r.randint(1, max(1, count // 50))}",
        ),
        Route("dashboard: accounts, a search", lambda r: f"/?q=user{r.randint(0, 99):04d}"),
        Route("dashboard: an account's page, 30 days", lambda r: f"/accounts/{account(r)}"),
    ]


# --- the server ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Usage:
    """A process's CPU seconds (user + system) and memory at one moment."""

    cpu: float
    rss: int
    peak_rss: int


def usage(pid: int) -> Usage:
    """What ``/proc`` says of ``pid`` now."""
    # Fields after the command name (which may hold spaces): state is field 3, utime 14.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / _TICKS
    memory = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in {"VmRSS", "VmHWM"}:
            memory[key] = int(value.split()[0]) * 1024
    return Usage(cpu=cpu, rss=memory.get("VmRSS", 0), peak_rss=memory.get("VmHWM", 0))


def family_cpu(parent: int) -> float:
    """CPU seconds of ``parent`` and its children now (PostgreSQL: postmaster and backends).

    Children that ended count through ``parent``'s reaped-children times: the pool closes
    the connections it opened beyond its size, and their backends exit.
    """
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # it ended meanwhile
            continue
        if int(stat.parent.name) == parent:
            total += sum(int(f) for f in fields[11:15]) / _TICKS  # own and reaped children's
        elif int(fields[1]) == parent:
            total += (int(fields[11]) + int(fields[12])) / _TICKS
    return total


class Server:
    """``fedimeter serve`` in a process of its own, for one database."""

    def __init__(self, url: str, folder: Path, database_pid: int | None = None) -> None:
        """Start it (``wait`` blocks until it answers); ``database_pid``: PostgreSQL's."""
        self.database_pid = database_pid
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_hex(16)
        self.log = folder / f"serve-{self.port}.log"
        # Nothing of the caller's fedimeter set-up: no configuration file, no settings.
        env = {k: v for k, v in os.environ.items() if not k.startswith("FEDIMETER_")}
        env |= {
            "FEDIMETER_DATABASE_URL": url,
            "FEDIMETER_READ_TOKEN": self.token,
            "XDG_CONFIG_HOME": str(folder),
            "XDG_DATA_HOME": str(folder),
        }
        command = [
            sys.executable,
            "-m",
            "fedimeter",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-schedule",
            "--log-level",
            "warning",
        ]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and command
                command, env=env, stdout=log, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.process.pid

    def wait(self) -> None:
        """Block until ``/readyz`` answers 200.

        Raises:
            RuntimeError: the server exited or did not become ready in time.
        """
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(base_url=self.base_url, trust_env=False, timeout=5) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the server exited:\n{self.log.read_text()[-2000:]}")
                with contextlib.suppress(httpx.TransportError):
                    if http.get("/readyz").status_code == httpx.codes.OK:
                        return
                time.sleep(0.1)
        raise RuntimeError(f"the server did not become ready:\n{self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it; SIGKILL if it lingers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --- the load --------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One run of one route at one concurrency."""

    route: str
    concurrency: int
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    body_bytes: int = 0
    #: Seconds the requests took from the first sent to the last answered.
    wall: float = 0.0
    #: Seconds the server's CPU was measured over (longer than ``wall`` beside a report).
    window: float = 0.0
    server_cpu: float = 0.0
    database_cpu: float | None = None
    client_cpu: float = 0.0
    rss_before: int = 0
    rss_after: int = 0

    @property
    def requests(self) -> int:
        """Requests answered or failed."""
        return len(self.latencies)

    @property
    def errors(self) -> int:
        """Answers other than 2xx, and requests that got no answer."""
        return sum(self.statuses.values())


def _percentile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank percentile ``q`` (0-100] of sorted values."""
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


async def drive(
    http: httpx.AsyncClient,
    route: Route,
    concurrency: int,
    *,
    duration: float | None = None,
    requests: int | None = None,
    rng: random.Random,
    outcome: Outcome,
) -> None:
    """``concurrency`` connections sending ``route``'s requests back to back.

    For ``duration`` seconds (requests in flight at the end are finished and counted), or
    until ``requests`` have been sent.
    """
    started = time.perf_counter()
    deadline = math.inf if duration is None else started + duration
    remaining = math.inf if requests is None else requests

    async def connection() -> None:
        nonlocal remaining
        while remaining > 0 and time.perf_counter() < deadline:
            remaining -= 1
            path = route.path(rng)
            sent = time.perf_counter()
            try:
                response = await http.get(path)
            except httpx.HTTPError as exc:
                outcome.latencies.append(time.perf_counter() - sent)
                kind = type(exc).__name__
                outcome.statuses[kind] += 1
                outcome.examples.setdefault(kind, f"{path}: {exc}"[:ERROR_SNIPPET])
                continue
            outcome.latencies.append(time.perf_counter() - sent)
            outcome.body_bytes += len(response.content)
            if not response.is_success:
                code = str(response.status_code)
                outcome.statuses[code] += 1
                outcome.examples.setdefault(code, f"{path}: {response.text}"[:ERROR_SNIPPET])

    await asyncio.gather(*(connection() for _ in range(concurrency)))
    outcome.wall = time.perf_counter() - started


@contextlib.contextmanager
def measured(server: Server, outcome: Outcome) -> Iterator[None]:
    """Record the wall time, the server's, its database's and this process's CPU, its memory."""
    before = usage(server.pid)
    database = None if server.database_pid is None else family_cpu(server.database_pid)
    client = time.process_time()
    started = time.perf_counter()
    try:
        yield
    finally:
        outcome.window = time.perf_counter() - started
        outcome.client_cpu = time.process_time() - client
        after = usage(server.pid)
        outcome.server_cpu = after.cpu - before.cpu
        if database is not None and server.database_pid is not None:
            outcome.database_cpu = family_cpu(server.database_pid) - database
        outcome.rss_before, outcome.rss_after = before.rss, after.rss


@dataclass(frozen=True, slots=True)
class Options:
    """What to build and how to load it, from the command line."""

    accounts: int
    days: int
    duration: float
    warmup: float
    concurrency: tuple[int, ...]
    heavy_concurrency: tuple[int, ...]
    heavy_requests: int
    database: Path | None
    profile: Path | None
    only: str = ""


def _client(server: Server, concurrency: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {server.token}"},
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        timeout=REQUEST_TIMEOUT,
        trust_env=False,  # no proxy from the environment: loopback only
    )


async def run_route(server: Server, route: Route, concurrency: int, opts: Options) -> Outcome:
    """Warm up, then measure ``route`` at ``concurrency``."""
    rng = random.Random(f"{SEED}{route.name}{concurrency}")
    async with _client(server, concurrency) as http:
        warm = Outcome(route.name, concurrency)
        if route.heavy:
            await drive(http, route, concurrency, requests=concurrency, rng=rng, outcome=warm)
        else:
            await drive(http, route, concurrency, duration=opts.warmup, rng=rng, outcome=warm)
        outcome = Outcome(route.name, concurrency)
        with measured(server, outcome):
            if route.heavy:
                await drive(
                    http,
                    route,
                    concurrency,
                    requests=opts.heavy_requests,
                    rng=rng,
                    outcome=outcome,
                )
            else:
                await drive(
                    http, route, concurrency, duration=opts.duration, rng=rng, outcome=outcome
                )
    return outcome


async def run_beside(
    server: Server, light: Route, heavy: Route, concurrency: int, opts: Options
) -> Outcome:
    """``light`` at ``concurrency`` while ``heavy`` is requested one at a time, back to back."""
    rng = random.Random(f"{SEED}{light.name}beside")
    outcome = Outcome(light.name, concurrency)
    background = Outcome(heavy.name, 1)
    async with _client(server, concurrency + 1) as http:
        await drive(http, light, concurrency, duration=opts.warmup, rng=rng, outcome=Outcome("", 0))
        with measured(server, outcome):
            await asyncio.gather(
                drive(http, light, concurrency, duration=opts.duration, rng=rng, outcome=outcome),
                drive(http, heavy, 1, duration=opts.duration, rng=rng, outcome=background),
            )
    outcome.route = f"{light.name}, beside {background.requests} all-accounts reports"
    # The background's errors are the run's errors too.
    outcome.statuses.update({f"report {k}": v for k, v in background.statuses.items()})
    outcome.examples |= {f"report {k}": v for k, v in background.examples.items()}
    return outcome


# --- profiling -------------------------------------------------------------------------------


#: Frames on top of a stack that mean its thread waits rather than works: the event loop's
#: select, the worker threads' queues. py-spy's own idle detection misses them.
IDLE_FRAMES = ("EpollSelector.select (selectors.py", "Condition.wait (threading.py")


#: fedimeter's request handling, less the command line and the start-up frames above it.
_OWN_CODE = re.compile(r"\(fedimeter/(?!cli/|__main__)")


def _aiosqlite_wait() -> str:
    """The frame of aiosqlite's worker thread waiting for its next call (``tx.get()``)."""
    lines, first = inspect.getsourcelines(aiosqlite.core._connection_worker_thread)  # noqa: SLF001
    at = next((i for i, line in enumerate(lines) if "tx.get(" in line), 0)
    return f"_connection_worker_thread (aiosqlite/core.py:{first + at})"


def top_frames(collapsed: Path, top: int = 15) -> tuple[list[tuple[str, float]], ...]:
    """fedimeter's functions most on the stack (inclusive), any most on top of it (self).

    Shares of the busy samples, idle stacks left out: those whose thread ran Python, or C code
    called from it (such as SQLite's), rather than waiting.
    """
    idle_leaf = _aiosqlite_wait()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = stack.split(";")
        leaf = frames[-1]
        if leaf == idle_leaf or leaf.startswith(IDLE_FRAMES):
            continue
        count = int(count_text)
        total += count
        functions = [re.sub(r":\d+\)$", ")", frame) for frame in frames]
        own[functions[-1]] += count
        for function in set(functions):
            if _OWN_CODE.search(function):
                inclusive[function] += count
    if not total:
        return [], []
    return (
        [(function, n / total) for function, n in inclusive.most_common(top)],
        [(function, n / total) for function, n in own.most_common(top)],
    )


async def profile_route(
    server: Server, route: Route, concurrency: int, opts: Options, *, folder: Path, tag: str
) -> None:
    """Run ``route`` again with py-spy sampling the server; print where its time went."""
    spy = shutil.which("py-spy")
    if spy is None:
        print("py-spy is not installed (pip install py-spy): no profile")
        return
    slug = "".join(c if c.isalnum() else "-" for c in route.name).strip("-")
    output = folder / f"{tag}-{slug}-c{concurrency}.txt"
    recorder = await asyncio.create_subprocess_exec(
        spy,
        "record",
        "--pid",
        str(server.pid),
        "--format",
        "raw",
        "--rate",
        "200",
        "--output",
        str(output),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    await asyncio.sleep(1.0)  # py-spy attaches
    await run_route(server, route, concurrency, opts)
    recorder.send_signal(signal.SIGINT)
    _, errors = await asyncio.wait_for(recorder.communicate(), timeout=60)
    if not output.exists():
        print(f"\n[{tag}] py-spy wrote no profile of {route.name}: {errors.decode()[-500:]}")
        return
    inclusive, own = top_frames(output)
    print(f"\n[{tag}] py-spy, {route.name}, concurrency {concurrency} ({output}):")
    print("  fedimeter's, on the stack (inclusive)                      |  any, on top (self)")
    for (frame_in, share_in), (frame_own, share_own) in zip(inclusive, own, strict=False):
        print(f"  {share_in:5.1%} {frame_in[:55]:<55} | {share_own:5.1%} {frame_own[:70]}")


# --- building --------------------------------------------------------------------------------


async def build(url: str, backend: str, opts: Options) -> str:
    """Fill the empty database at ``url``; a line saying what was done."""
    timings = Timings(backend=backend)
    db = await Database.open(normalise_database_url(url))
    try:
        started = time.perf_counter()
        await ingest(db, opts.accounts, opts.days, timings)
    finally:
        await db.close()
    return (
        f"{timings.ingest_rows:,} samples written in {time.perf_counter() - started:.0f} s"
        f" (generated, inserted, analysed)"
    )


async def shape_of(url: str) -> tuple[int, int]:
    """Accounts and days of samples in an existing database."""
    db = await Database.open(normalise_database_url(url))
    try:
        async with db.engine.connect() as conn:
            count = (await conn.execute(select(func.count()).select_from(accounts))).scalar_one()
            first, last = (
                await conn.execute(
                    select(
                        func.min(account_samples.c.taken_at), func.max(account_samples.c.taken_at)
                    )
                )
            ).one()
    finally:
        await db.close()
    days = 0 if first is None else (last.date() - first.date()).days + 1
    return int(count), days


# --- one backend -----------------------------------------------------------------------------


async def load_server(server: Server, backend: str, opts: Options) -> list[Outcome]:
    """Every route at every concurrency against a ready ``server``."""
    outcomes = []
    all_routes = routes(opts.accounts, opts.days)
    chosen = [r for r in all_routes if opts.only in r.name]
    for route in chosen:
        for concurrency in opts.heavy_concurrency if route.heavy else opts.concurrency:
            print(f"  {route.name}, concurrency {concurrency} ...", flush=True)
            outcomes.append(await run_route(server, route, concurrency, opts))
    light = all_routes[0]
    heavy = next(r for r in all_routes if r.heavy)
    concurrency = max(opts.concurrency)
    if not opts.only or "beside" in opts.only:
        print(f"  {light.name}, concurrency {concurrency}, beside a report loop ...", flush=True)
        outcomes.append(await run_beside(server, light, heavy, concurrency, opts))
    if opts.profile is not None:
        opts.profile.mkdir(parents=True, exist_ok=True)
        for route in chosen:
            concurrency = max(opts.heavy_concurrency if route.heavy else opts.concurrency)
            await profile_route(server, route, concurrency, opts, folder=opts.profile, tag=backend)
    return outcomes


@dataclass
class BackendResult:
    """One backend's runs and the server's memory around them."""

    backend: str
    built: str
    outcomes: list[Outcome]
    start: Usage
    end: Usage


def serve_and_load(
    backend: str, url: str, opts: Options, built: str, database_pid: int | None = None
) -> BackendResult:
    """Start the server on ``url``, load it, stop it."""
    with tempfile.TemporaryDirectory(prefix="fedimeter-bench-api-") as folder:
        server = Server(url, Path(folder), database_pid)
        try:
            server.wait()
            start = usage(server.pid)
            outcomes = asyncio.run(load_server(server, backend, opts))
            end = usage(server.pid)
        finally:
            server.stop()
    return BackendResult(backend, built, outcomes, start, end)


def run_sqlite(opts: Options) -> BackendResult:
    """The benchmark on SQLite: a new file, or ``--database``'s (kept, reused)."""
    with tempfile.TemporaryDirectory(prefix="fedimeter-bench-") as folder:
        path = opts.database or Path(folder) / "bench.sqlite3"
        url = f"sqlite:///{path}"
        if path.exists():
            count, days = asyncio.run(shape_of(url))
            if (count, days) != (opts.accounts, opts.days):
                sys.exit(
                    f"{path} holds {count:,} accounts x {days} days, not {opts.accounts:,} x"
                    f" {opts.days}: delete it or ask for its size"
                )
            built = f"reused {path} ({count:,} accounts x {days} days)"
        else:
            built = asyncio.run(build(url, "sqlite", opts))
        print(f"  {built}; serving ...", flush=True)
        return serve_and_load("sqlite", url, opts, built)


def run_postgresql(opts: Options) -> BackendResult | None:
    """The benchmark on a throw-away PostgreSQL server; None when none can be started."""
    server = _postgres()
    if server is None:
        return None
    try:
        url = server.url("postgres")
        built = asyncio.run(build(url, "postgresql", opts))
        print(f"  {built}; serving ...", flush=True)
        postmaster = int((server.datadir / "postmaster.pid").read_text().split()[0])
        return serve_and_load("postgresql", url, opts, built, postmaster)
    finally:
        server.stop()


# --- report ----------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return f"{value * 1000:,.1f}" if value < 10 else f"{value * 1000:,.0f}"


def _row(outcome: Outcome) -> list[str]:
    ordered = sorted(outcome.latencies)
    count = len(ordered)
    if not count:
        return [outcome.route, str(outcome.concurrency), "0", *("-" for _ in range(11))]
    return [
        outcome.route,
        str(outcome.concurrency),
        f"{count:,}",
        f"{outcome.errors:,}",
        f"{count / outcome.wall:,.1f}",
        _ms(_percentile(ordered, 50)),
        _ms(_percentile(ordered, 90)),
        _ms(_percentile(ordered, 99)),
        _ms(ordered[-1]),
        f"{outcome.server_cpu / outcome.window:.0%}",
        _ms(outcome.server_cpu / count),
        "-" if outcome.database_cpu is None else _ms(outcome.database_cpu / count),
        f"{outcome.client_cpu / outcome.window:.0%}",
        f"{outcome.body_bytes / count / 1024:,.1f}",
    ]


HEADERS = [
    "route",
    "conc",
    "requests",
    "errors",
    "req/s",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "max ms",
    "server CPU",
    "CPU ms/req",
    "PG CPU ms/req",
    "load gen CPU",
    "KiB/answer",
]


def show(results: Sequence[BackendResult], opts: Options) -> None:
    """Print one table per backend, the errors and the server's memory."""
    for result in results:
        print_table(
            f"[{result.backend}] {opts.accounts:,} accounts x {opts.days} days; light routes"
            f" {opts.duration:g} s each after {opts.warmup:g} s of warm-up, heavy ones"
            f" {opts.heavy_requests} requests after one (CPU: share of one core)",
            HEADERS,
            [_row(o) for o in result.outcomes],
        )
        print(
            "The CPU of the row beside reports includes the reports'; its req/s and latencies"
            " are those of its own requests."
        )
        failed = [o for o in result.outcomes if o.errors]
        if failed:
            print("\nErrors (answers other than 2xx, or no answer):")
            for outcome in failed:
                for kind, n in outcome.statuses.most_common():
                    print(
                        f"  {outcome.route}, concurrency {outcome.concurrency}: {n} x {kind},"
                        f" e.g. {outcome.examples[kind]!r}"
                    )
        else:
            print("\nErrors: none (every answer was 2xx).")
        print(
            f"Server memory: RSS {mebibytes(result.start.rss)} when ready,"
            f" {mebibytes(result.end.rss)} at the end, peak {mebibytes(result.end.peak_rss)};"
            f" CPU {result.end.cpu - result.start.cpu:.1f} s over the whole run."
            f" Database: {result.built}."
        )


def _versions() -> str:
    names = ["fastapi", "starlette", "uvicorn", "pydantic", "httpx", "aiosqlite", "asyncpg"]
    found = []
    for name in names:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found.append(f"{name} {importlib.metadata.version(name)}")
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    parser = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return f"{', '.join(found)}; uvicorn runs on {loop} with {parser} (one worker)"


def _levels(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list such as 1,16") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("concurrency levels are whole numbers of at least 1")
    return values


def parse(argv: Sequence[str] | None = None) -> tuple[Options, list[str]]:
    """What to build and load, and the backends to run, from the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--accounts", type=int, default=None, help="default 10,000 (quick 1,000)")
    parser.add_argument("--days", type=int, default=GOAL_DAYS, help="days of samples, default 365")
    parser.add_argument(
        "--backend",
        choices=["sqlite", "postgresql", "pg", "both"],
        default="sqlite",
        help="default sqlite",
    )
    parser.add_argument(
        "--duration", type=float, default=None, help="seconds per light run (10; quick 3)"
    )
    parser.add_argument(
        "--warmup", type=float, default=None, help="seconds of warm-up per light run (2; quick 1)"
    )
    parser.add_argument(
        "--concurrency", type=_levels, default=(1, 16), help="light routes, default 1,16"
    )
    parser.add_argument(
        "--heavy-concurrency", type=_levels, default=(1, 2), help="all-accounts reports, 1,2"
    )
    parser.add_argument(
        "--heavy-requests", type=int, default=None, help="requests per heavy run (6; quick 2)"
    )
    parser.add_argument(
        "--database", type=Path, default=None, help="SQLite file to build once and reuse"
    )
    parser.add_argument(
        "--profile", type=Path, default=None, metavar="DIR", help="py-spy every route into DIR"
    )
    parser.add_argument(
        "--only", default="", metavar="TEXT", help="only the routes whose name contains TEXT"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1,000 accounts")
    args = parser.parse_args(argv)
    count = args.accounts or (1_000 if args.quick else GOAL_ACCOUNTS)
    heavy_requests = args.heavy_requests or (2 if args.quick else 6)
    duration = args.duration or (3.0 if args.quick else 10.0)
    warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    if count < 1 or heavy_requests < 1 or duration <= 0 or warmup < 0:
        parser.error("--accounts and --heavy-requests must be at least 1, --duration positive")
    if args.days < MIN_DAYS:
        parser.error(f"--days must be at least {MIN_DAYS} (the report reads {MIN_DAYS} days)")
    backend = "postgresql" if args.backend == "pg" else args.backend
    backends = ["sqlite", "postgresql"] if backend == "both" else [backend]
    opts = Options(
        accounts=count,
        days=args.days,
        duration=duration,
        warmup=warmup,
        concurrency=args.concurrency,
        heavy_concurrency=args.heavy_concurrency,
        heavy_requests=heavy_requests,
        database=args.database,
        profile=args.profile,
        only=args.only,
    )
    return opts, backends


def main(argv: Sequence[str] | None = None) -> None:
    """Build, serve, load, print."""
    opts, backends = parse(argv)
    print(
        f"fedimeter API benchmark: {opts.accounts:,} accounts on {INSTANCES} instances,"
        f" {opts.days} days of daily samples each, served by `fedimeter serve --no-schedule`"
        " on 127.0.0.1 and loaded from another process"
    )
    print_environment(backends)
    print(_versions())
    results = []
    for backend in backends:
        print(f"\n[{backend}] building, serving and loading ...", flush=True)
        result = run_sqlite(opts) if backend == "sqlite" else run_postgresql(opts)
        if result is not None:
            results.append(result)
    if results:
        show(results, opts)


if __name__ == "__main__":
    main()
