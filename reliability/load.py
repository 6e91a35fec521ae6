"""The API under a loopback load for minutes: it keeps answering, with stable memory.

Issue 8's load run. This builds a SQLite database of N accounts (on 50 instances) with D days
of daily samples each (``bench/api.py``'s builder), starts the real server as a user would —
``python -m fedimeter serve --no-schedule`` in a process of its own on 127.0.0.1, with a read
token and an API token set (``bench/api.py``'s ``Server``; the API token through the
configuration file) — and drives it from this process, closed-loop:

- **light lanes** (``--concurrency`` - 1 keep-alive connections) send a weighted mix: one
  account's samples over 30 days and over its whole history as JSON and CSV, mastodon-meter's
  ``/api/{id}/data``, one account's report (fedimeter's and mastodon-meter's), the account
  and a page of the account list, an account's graph (PNG), the dashboard's pages; and the
  error cases: 404s (unknown accounts and paths), 422s (bad dates, periods, formats, limits,
  ids) and 401s (writes with the read token or none, reads with a wrong token or none). One
  request in twenty asks the server to close its connection, so connections come and go;
- **one heavy lane** asks, one at a time with 2 s between them, for what is big: the 30-day
  report of every account (JSON), mastodon-meter's report of every account, ``/metrics``, and
  the report once more from a client that hangs up after 50 ms.

Every kind of request has the status it must get (200, 404, 422 or 401). Before the measured
run come one request of every kind, a burst of graphs and ``/metrics`` (so that every worker
thread of the server has drawn and rendered), and ``--warmup`` seconds of the mix (10 minutes;
``--ci``: 150 s); then every few seconds the server's RSS, open descriptors, threads and CPU
are read from ``/proc``. The goals:

- **no failure**: no 5xx, no connection error or timeout (60 s), the hang-ups made on
  purpose aside; and **every answer as expected**: each has the status of its kind;
- **stable memory**: the median RSS read over the last third of the run is at most 10 MiB
  above the median over its middle third, when the run begins after 10 minutes of load.
  Why so: under this mix the server's RSS first rises — by 25-30 MiB over 2-5 minutes at
  2,000 accounts x 90 days, by 80-130 MiB over 10-20 minutes at 10,000 x 365 (caches, and
  the allocators keeping memory that the big answers used in one thread or another) — and
  then wanders in a band 30 MiB (2,000) or 70-110 MiB (10,000) wide with whichever heavy
  answer is being built when it is read, while the Python objects alive between requests
  stay as many (counted: 1.12 M blocks, 300,000 objects throughout a 10-minute run at
  10,000 accounts). A line fitted through such a band swings by +-70 MiB over 5 minutes and
  +-10 MiB over 15, and its top (the highest reading of a third) by +-10 MiB from one third
  to the next with no trend (measured: five 30-minute runs; the peaks were the goal until a
  run whose level fell showed +9.9 MiB in one reading). The median of a third (120 readings)
  moved by -4.7 to +5.5 MiB from the middle third to the last in the four runs without a
  trend, and by +21.6 MiB in the one whose level drifted up (glibc's default arenas, since
  limited): a leak lifts the level for good, and 10 MiB in 10 minutes is the least this run
  tells from the band's wandering (a longer ``--duration`` resolves less). The first third
  finishes the settling and is not judged. A run that begins earlier (the ``--ci`` form,
  150 s in) may still be settling: its limit is 24 MiB, a gross leak (~20 KB a request, or
  ~5 MB per all-accounts report). Its warm-up covers most of the rise at 2,000 accounts
  (measured with the server's 2 allocator arenas: 246 MiB at 20 s, 267 at 2 minutes, then a
  band of 263-277 MiB over the next 3); with 10 s of warm-up, as it had at first, a minute
  of load caught the rise itself (+28 MiB) on a slow CI machine. The peaks by third and the
  least-squares growth over the second half are printed too, for reference;
- **no descriptor leak**: with no client connected, after the warm-up and at the end, the
  server holds no more descriptors other than the database's files and fonts at the end, at
  most 3 more of the database's (SQLAlchemy's pool keeps a varying number of idle
  connections), and no more font files than matplotlib's font cache can hold (64 fonts,
  each with its fallbacks: which are open depends on the cache's turnover, not on time);
- **no slowdown**: the light lanes' median latency over the second half is at most twice
  that of the first half (+1 ms), their 99th percentile at most three times (+10 ms) — the
  halves of a one-minute run differ by up to 1.5x on a machine shared with others; a server
  getting steadily slower goes past that;
- **still serving**: the server is alive and ready at the end, the refused writes changed
  nothing in the database, it stops on SIGTERM with exit code 0, and its log holds no error.

    python reliability/load.py                               # 10,000 x 365, 10 + 30 minutes
    python reliability/load.py --duration 3600               # an hour of load
    python reliability/load.py --database /tmp/load.sqlite3  # build the file once, reuse it
    python reliability/load.py --ci --json out.json          # the bounded form CI runs

Prints a table per minute (per quarter of a run shorter than 4 minutes), one per kind of
request, the server's memory and descriptors, and the verdict; exits 1 when a goal failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import func, select

from fedimeter.config import normalise_database_url
from fedimeter.storage.database import Database
from fedimeter.storage.tables import accounts as accounts_table
from fedimeter.storage.tables import runs as runs_table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
# bench/ is not a package, nor checked by mypy: its pieces are untyped here.
import api as bench  # type: ignore[import-not-found]

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

SEED = 8


@dataclass(frozen=True)
class Shape:
    """What the run builds and how long it loads the server."""

    accounts: int
    days: int
    #: Seconds of measured load, after ``warmup`` seconds of the same.
    duration: float
    warmup: float
    #: Connections: one heavy lane and the rest light.
    concurrency: int
    #: Seconds between two readings of the server's RSS, descriptors and threads.
    sample_every: float
    seed: int
    #: Kinds of request left out: those whose name contains one of these.
    skip: tuple[str, ...] = ()

    @property
    def interval(self) -> float:
        """Seconds per row of the latency table: a minute, or a quarter of a short run."""
        return 60.0 if self.duration >= 240 else self.duration / 4


FULL = Shape(10_000, 365, 1800.0, 600.0, 8, 5.0, SEED)
CI = Shape(2_000, 90, 60.0, 150.0, 8, 1.0, SEED)

#: The goal on memory: the median RSS of the run's last third at most this much above the
#: median of its middle third, when the run begins once the server's memory has settled ...
RSS_GROWTH_LIMIT = 10 * 2**20
#: ... which it has after this many seconds of load, warm-up included. Measured under this
#: mix: the RSS rises by 25-30 MiB over the first 2-5 minutes at 2,000 accounts, by 80-130
#: MiB over the first 10-20 at 10,000, then stays in a band (+-15 and +-35 MiB).
SETTLED_AFTER = 600.0
#: The limit for a run that begins earlier (the --ci form): it may still be settling, and
#: can only show a gross leak.
RSS_GROWTH_LIMIT_UNSETTLED = 24 * 2**20
#: The goals on latency, second half against the first: factor and slack in seconds.
P50_FACTOR, P50_SLACK = 2.0, 0.001
P99_FACTOR, P99_SLACK = 3.0, 0.010
#: Descriptors of the database's files the server may hold more of at the end than at the
#: start: SQLAlchemy's pool keeps a varying number of idle connections, each with the file
#: and its WAL open, and SQLite may keep a closed connection's file open for the next one.
DATABASE_FILES_SLACK = 3
#: Font files matplotlib may hold open: its font cache keeps up to 64 fonts (per drawing
#: thread), each with its file and its fallbacks' (fedimeter's graphs ask for up to four
#: families, graphs.drawing.font_families). Which ones are open at a moment depends on the
#: cache's turnover and the garbage collector, not on how long the server ran: counted
#: apart, against that bound, not against the start.
FONT_FILES_MAX = 64 * 4
_FONT_FILE = re.compile(r"\.(?:ttf|ttc|otf)$", re.IGNORECASE)
#: Seconds the heavy lane waits between two requests.
HEAVY_PAUSE = 2.0
#: The heavy lane's impatient client hangs up after this many seconds.
HANG_UP_AFTER = 0.05
#: Requests of each kind the server renders in its worker threads, sent at once in the
#: warm-up: more than the threads of asyncio's default pool on this machine (cores + 4).
BURST = min(32, (os.cpu_count() or 1) + 4) * 2
THREADED = ("graph PNG, 30 days", "/metrics")
#: Share of light requests sent with ``Connection: close``.
CHURN = 0.05
#: Seconds one request may take before it counts as a failure.
REQUEST_TIMEOUT = 60.0
#: Seconds to let the server close the connections a client closed, before counting files.
SETTLE = 1.0
#: Lines of the server's log that mean something went wrong.
LOG_TROUBLE = re.compile(r"Traceback|\bERROR\b|Exception in ASGI|\bCRITICAL\b")
HANG_UP = "hung up"


# --- the kinds of request --------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """A kind of request: ``path(rng)`` makes one; ``expect`` is the status it must get."""

    name: str
    expect: int
    path: Callable[[random.Random], str]
    #: Share in the light mix (0: the heavy lane's).
    weight: float = 0.0
    method: str = "GET"
    #: ``read`` (the read token), ``none`` or ``wrong`` (a token that is neither).
    auth: str = "read"
    body: dict[str, Any] | None = None
    #: Seconds after which the client hangs up (the heavy lane's impatient client).
    hang_up: float | None = None


def kinds(count: int, days: int) -> list[Kind]:
    """The light mix and the heavy lane's requests, over ``count`` accounts and ``days``."""
    now = bench.NOW
    until = bench._iso(now)  # noqa: SLF001
    month = f"since={bench._iso(now - timedelta(days=30))}&until={until}"  # noqa: SLF001
    whole = f"since={bench._iso(now - timedelta(days=days))}&until={until}"  # noqa: SLF001
    data = f"since={bench._iso(now - timedelta(days=days))}&to={until}"  # noqa: SLF001
    handle = {"handle": "@someone@example.org"}
    add = {"username": "someone", "instance": "example.org"}

    def account(rng: random.Random) -> int:
        return rng.randint(1, count)

    def nobody(rng: random.Random) -> int:
        return count + 1000 + rng.randrange(1000)

    def offset(rng: random.Random) -> str:
        return f"limit=100&offset={rng.randrange(count)}"

    def one(rng: random.Random) -> str:
        return f"account_id={account(rng)}&period=30d&until={until}"

    def samples(r: random.Random) -> str:
        return f"/api/v1/accounts/{account(r)}/samples"

    def page(r: random.Random) -> int:
        return r.randint(1, max(1, count // 50))

    read, write = "read", "POST"
    light = [
        Kind("samples, 30 days, JSON", 200, lambda r: f"{samples(r)}?{month}", 14),
        Kind(f"samples, {days} days, JSON", 200, lambda r: f"{samples(r)}?{whole}", 8),
        Kind(f"samples, {days} days, CSV", 200, lambda r: f"{samples(r)}?{whole}&format=csv", 6),
        Kind(
            f"mastodon-meter /data, {days} days", 200, lambda r: f"/api/{account(r)}/data?{data}", 6
        ),
        Kind("one account", 200, lambda r: f"/api/v1/accounts/{account(r)}", 4),
        Kind("accounts, a page of 100", 200, lambda r: f"/api/v1/accounts?{offset(r)}", 3),
        Kind("report, one account, 30 days", 200, lambda r: f"/api/v1/report?{one(r)}", 5),
        Kind(
            "mastodon-meter /report, one account",
            200,
            lambda r: f"/api/report?accounts={account(r)}",
            3,
        ),
        Kind(
            "graph PNG, 30 days",
            200,
            lambda r: f"/api/v1/accounts/{account(r)}/graph.png?{month}",
            2,
        ),
        Kind("dashboard: accounts, first page", 200, lambda _r: "/", 3),
        Kind(
            "dashboard: by 7-day change, a page",
            200,
            lambda r: f"/?sort=change_7&page={page(r)}",
            3,
        ),
        Kind("dashboard: a search", 200, lambda r: f"/?q=user{r.randint(0, 99):04d}", 2),
        Kind("dashboard: an account", 200, lambda r: f"/accounts/{account(r)}", 5),
        Kind("dashboard: rounds", 200, lambda _r: "/runs", 1),
        Kind("dashboard: instances", 200, lambda _r: "/instances", 1),
        Kind(
            "404 samples, no such account",
            404,
            lambda r: f"/api/v1/accounts/{nobody(r)}/samples",
            2,
        ),
        Kind("404 /data, no such account", 404, lambda r: f"/api/{nobody(r)}/data", 1),
        Kind(
            "404 report, no such account",
            404,
            lambda r: f"/api/v1/report?account_id={nobody(r)}",
            1,
        ),
        Kind("404 dashboard, no such account", 404, lambda r: f"/accounts/{nobody(r)}", 1),
        Kind("404 no such path", 404, lambda r: f"/api/v1/nothing/{r.randrange(1000)}", 1),
        Kind("422 since is not a date", 422, lambda r: f"{samples(r)}?since=yesterday-ish", 2),
        Kind("422 format=xml", 422, lambda r: f"{samples(r)}?format=xml", 1),
        Kind("422 limit=5000", 422, lambda _r: "/api/v1/accounts?limit=5000", 1),
        Kind("422 period=fortnight", 422, lambda _r: "/api/v1/report?period=fortnight", 1),
        Kind("422 account id not a number", 422, lambda _r: "/api/v1/accounts/abc/samples", 1),
        Kind("401 track, read token", 401, lambda _r: "/api/v1/accounts", 1, write, read, handle),
        Kind("401 start a round, no token", 401, lambda _r: "/api/v1/runs", 1, write, "none"),
        Kind(
            "401 untrack, read token", 401, lambda r: f"/api/v1/accounts/{account(r)}", 1, "DELETE"
        ),
        Kind(
            "401 mastodon-meter add, no token",
            401,
            lambda _r: "/api/accounts/add",
            1,
            write,
            "none",
            add,
        ),
        Kind("401 gather-data, read token", 401, lambda _r: "/api/gather-data", 1),
        Kind("401 read, no token", 401, lambda r: f"{samples(r)}?{month}", 1, auth="none"),
        Kind(
            "401 read, wrong token",
            401,
            lambda r: f"/api/v1/accounts/{account(r)}",
            1,
            auth="wrong",
        ),
    ]
    everyone = f"/api/v1/report?period=30d&until={until}"
    heavy = [
        Kind("report, every account, 30 days", 200, lambda _r: everyone),
        Kind("/metrics", 200, lambda _r: "/metrics"),
        Kind("mastodon-meter /report, every account", 200, lambda _r: "/api/report"),
        Kind("report, every account, hung up", 200, lambda _r: everyone, hang_up=HANG_UP_AFTER),
    ]
    return light + heavy


# --- figures ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """The server at one moment, ``at`` seconds after the measured run began."""

    at: float
    rss: int
    fds: int
    threads: int
    cpu: float


@dataclass(frozen=True)
class Answer:
    """One request: when it was sent (seconds into the run), how long it took, what came."""

    sent: float
    seconds: float
    kind: str
    heavy: bool
    #: The status, or the name of the exception, or ``HANG_UP``.
    got: str
    expected: bool


@dataclass
class Interval:
    """One row of the latency table."""

    start: float
    end: float
    requests: int
    failures: int
    light_p50: float
    light_p99: float
    heavy_max: float
    #: Server CPU seconds per request answered in the interval.
    cpu_per_request: float
    rss_end: int
    fds_end: int


@dataclass
class KindFigures:
    """What one kind of request got."""

    kind: str
    expect: int
    heavy: bool
    requests: int
    answers: dict[str, int]
    unexpected: int
    p50: float
    p99: float
    example: str = ""


@dataclass
class Outcome:
    """The whole run."""

    shape: Shape
    built: str
    requests: int = 0
    requests_per_second: float = 0.0
    #: Answers by status (and transport errors by exception name), over every kind.
    statuses: dict[str, int] = field(default_factory=dict)
    failures: int = 0
    unexpected: int = 0
    hung_up: int = 0
    kinds: list[KindFigures] = field(default_factory=list)
    intervals: list[Interval] = field(default_factory=list)
    readings: list[Reading] = field(default_factory=list)
    rss_start: int = 0
    rss_max: int = 0
    rss_end: int = 0
    rss_peak: int = 0
    rss_growth_second_half: float = 0.0
    rss_slope_per_minute: float = 0.0
    #: The highest RSS read in the first and in the last third of the run, and the growth.
    rss_peak_first: int = 0
    rss_peak_last: int = 0
    rss_peak_growth: int = 0
    rss_median_middle: int = 0
    rss_median_last: int = 0
    rss_median_growth: int = 0
    rss_growth_limit: int = RSS_GROWTH_LIMIT
    fds_start: int = 0
    fds_end: int = 0
    fds_max: int = 0
    #: At rest, after the warm-up and at the end: the database's files and all the others.
    fds_database_start: int = 0
    fds_database_end: int = 0
    fds_other_start: int = 0
    fds_other_end: int = 0
    #: Font files matplotlib's font cache holds (bounded by ``FONT_FILES_MAX``).
    fds_font_start: int = 0
    fds_font_end: int = 0
    #: What the server held more of at the end than at the start, by target.
    fds_added: list[str] = field(default_factory=list)
    threads_start: int = 0
    threads_end: int = 0
    light_p50_first: float = 0.0
    light_p50_second: float = 0.0
    light_p99_first: float = 0.0
    light_p99_second: float = 0.0
    server_cpu_share: float = 0.0
    generator_cpu_share: float = 0.0
    alive_at_end: bool = False
    ready_at_end: bool = False
    written: list[str] = field(default_factory=list)
    server_exit: int | None = None
    log_trouble: list[str] = field(default_factory=list)

    @property
    def goals(self) -> dict[str, bool]:
        """Each goal and whether it held."""
        return {
            "no failure": self.failures == 0 and self.requests > 0,
            "every answer as expected": self.unexpected == 0,
            "stable memory": self.rss_median_growth <= self.rss_growth_limit,
            "no descriptor leak": (
                self.fds_other_end <= self.fds_other_start
                and self.fds_database_end <= self.fds_database_start + DATABASE_FILES_SLACK
                and self.fds_font_end <= FONT_FILES_MAX
            ),
            "no slowdown": (
                self.light_p50_second <= P50_FACTOR * self.light_p50_first + P50_SLACK
                and self.light_p99_second <= P99_FACTOR * self.light_p99_first + P99_SLACK
            ),
            "still serving": (
                self.alive_at_end
                and self.ready_at_end
                and not self.written
                and self.server_exit == 0
                and not self.log_trouble
            ),
        }

    @property
    def ok(self) -> bool:
        """Whether every goal held."""
        return all(self.goals.values())


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile ``q`` (0-100] of ``values``; 0 when there are none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return float(bench._percentile(ordered, q))  # noqa: SLF001


def slope(points: Sequence[tuple[float, float]]) -> float:
    """The least-squares slope of ``points`` (x, y); 0 for fewer than two distinct x."""
    if len(points) < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


# --- the server ------------------------------------------------------------------------------


def read_server(pid: int, at: float) -> Reading:
    """What ``/proc`` says of the server now."""
    usage = bench.usage(pid)
    threads = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            threads = int(line.split()[1])
    return Reading(
        at=at,
        rss=int(usage.rss),
        fds=sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir()),
        threads=threads,
        cpu=float(usage.cpu),
    )


def open_files(pid: int) -> Counter[str]:
    """What the server's descriptors point at (sockets and pipes by kind), counted."""
    found: Counter[str] = Counter()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # closed meanwhile
            found[re.sub(r":\[\d+\]$", "", str(fd.readlink()))] += 1
    return found


def start_server(url: str, folder: Path, api_token: str) -> Any:  # noqa: ANN401 - bench's Server
    """``bench/api.py``'s ``Server``, with an API token in its configuration file."""
    config = folder / "fedimeter"
    config.mkdir()
    (config / "fedimeter.toml").write_text(f'api_token = "{api_token}"\n')
    config.joinpath("fedimeter.toml").chmod(0o600)
    server = bench.Server(url, folder)
    try:
        server.wait()
    except BaseException:
        server.stop()
        raise
    return server


# --- the load --------------------------------------------------------------------------------


class Load:
    """The lanes, the readings and the answers of one run against one server."""

    def __init__(self, server: Any, mix: Sequence[Kind], shape: Shape) -> None:  # noqa: ANN401
        """Load ``server`` (``bench.Server``) with ``mix``."""
        self.server = server
        self.pid = int(server.pid)
        self.light = [k for k in mix if k.weight > 0]
        self.heavy = [k for k in mix if k.weight == 0]
        self.weights = [k.weight for k in self.light]
        self.shape = shape
        self.rng = random.Random(shape.seed)
        self.answers: list[Answer] = []
        self.readings: list[Reading] = []
        self.examples: dict[str, str] = {}
        self.headers = {
            "read": {"Authorization": f"Bearer {server.token}"},
            "none": {},
            "wrong": {"Authorization": f"Bearer {secrets.token_hex(16)}"},
        }
        self.started = 0.0

    def client(self, connections: int) -> httpx.AsyncClient:
        """Keep-alive connections to the server, no proxy."""
        return httpx.AsyncClient(
            base_url=str(self.server.base_url),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            timeout=REQUEST_TIMEOUT,
            trust_env=False,
        )

    async def send(
        self, http: httpx.AsyncClient, kind: Kind, *, heavy: bool, close: bool = False
    ) -> None:
        """One request of ``kind``; its answer recorded."""
        path = kind.path(self.rng)
        headers = dict(self.headers[kind.auth])
        if close:
            headers["Connection"] = "close"
        timeout = httpx.Timeout(kind.hang_up) if kind.hang_up is not None else REQUEST_TIMEOUT
        response: httpx.Response | None = None
        detail = ""
        sent = time.perf_counter()
        try:
            response = await http.request(
                kind.method, path, headers=headers, json=kind.body, timeout=timeout
            )
        except httpx.TimeoutException as exc:
            got = HANG_UP if kind.hang_up is not None else type(exc).__name__
            detail = f"{type(exc).__name__} {exc}"
        except httpx.HTTPError as exc:
            got = type(exc).__name__
            detail = f"{got} {exc}"
        else:
            got = str(response.status_code)
        done = time.perf_counter()
        expected = got == str(kind.expect) or got == HANG_UP
        if not expected:
            if response is not None:
                detail = f"{response.status_code} {response.text[:160]}"
            self.examples.setdefault(kind.name, f"{kind.method} {path}: {detail}"[:240])
        self.answers.append(
            Answer(sent - self.started, done - sent, kind.name, heavy, got, expected)
        )

    async def light_lane(self, http: httpx.AsyncClient, until: float) -> None:
        """The light mix, back to back, until ``until`` (perf_counter)."""
        while time.perf_counter() < until:
            (kind,) = self.rng.choices(self.light, self.weights)
            await self.send(http, kind, heavy=False, close=self.rng.random() < CHURN)

    async def heavy_lane(self, until: float) -> None:
        """The heavy requests in turn, one at a time, a pause between them."""
        turn = 0
        while self.heavy and time.perf_counter() < until:
            kind = self.heavy[turn % len(self.heavy)]
            turn += 1
            # A client of its own: one that hangs up takes its connection with it.
            async with self.client(1) as http:
                await self.send(http, kind, heavy=True)
            await asyncio.sleep(HEAVY_PAUSE)

    async def sampler(self, stop: asyncio.Event) -> None:
        """Read the server every ``sample_every`` seconds until ``stop``."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.shape.sample_every)
            if stop.is_set():
                return
            self.readings.append(read_server(self.pid, time.perf_counter() - self.started))

    async def run(self, seconds: float) -> None:
        """Every lane for ``seconds``; in-flight requests end and count."""
        until = time.perf_counter() + seconds
        async with self.client(self.shape.concurrency - 1) as http:
            await asyncio.gather(
                *(self.light_lane(http, until) for _ in range(self.shape.concurrency - 1)),
                self.heavy_lane(until),
            )

    async def warm_up(self) -> None:
        """One request of every kind, a burst, then ``warmup`` seconds of the load.

        The burst sends every kind that the server hands to its worker threads (graphs,
        ``/metrics``) several times at once, so that each of those threads has done each
        kind of work and holds what it keeps per thread (matplotlib's fonts, an allocator
        arena) before the measured run. Nothing of the warm-up is recorded.
        """
        self.started = time.perf_counter()
        async with self.client(1) as http:
            for kind in [*self.light, *self.heavy]:
                await self.send(http, kind, heavy=False)
        threaded = [k for k in [*self.light, *self.heavy] if k.name in THREADED]
        async with self.client(BURST) as http:
            await asyncio.gather(
                *(self.send(http, kind, heavy=False) for kind in threaded for _ in range(BURST))
            )
        await self.run(self.shape.warmup)
        self.examples.clear()
        self.answers.clear()

    async def measure(self) -> tuple[Reading, Reading, float]:
        """The measured run: readings after the warm-up and at the end, generator CPU."""
        self.started = time.perf_counter()
        first = read_server(self.pid, 0.0)
        self.readings.append(first)
        stop = asyncio.Event()
        sampler = asyncio.create_task(self.sampler(stop))
        cpu = time.process_time()
        await self.run(self.shape.duration)
        generator_cpu = time.process_time() - cpu
        stop.set()
        await sampler
        await asyncio.sleep(SETTLE)
        last = read_server(self.pid, time.perf_counter() - self.started)
        self.readings.append(last)
        return first, last, generator_cpu


# --- the run ---------------------------------------------------------------------------------


async def counts(url: str) -> dict[str, int]:
    """Accounts by state and rounds in the database (the refused writes must change none)."""
    db = await Database.open(normalise_database_url(url), migrate=False)
    try:
        async with db.connect() as conn:
            states = await conn.execute(
                select(accounts_table.c.state, func.count()).group_by(accounts_table.c.state)
            )
            found = {f"accounts {state}": int(n) for state, n in states}
            rounds = await conn.execute(select(func.count()).select_from(runs_table))
            found["rounds"] = int(rounds.scalar_one())
    finally:
        await db.close()
    return found


def prepare(url: str, path: Path, shape: Shape) -> str:
    """Build the SQLite file at ``path``, or check that the one there has ``shape``'s size."""
    if path.exists():
        count, days = bench_shape(url)
        if (count, days) != (shape.accounts, shape.days):
            sys.exit(
                f"{path} holds {count:,} accounts x {days} days, not {shape.accounts:,} x"
                f" {shape.days}: delete it or ask for its size"
            )
        return f"reused {path} ({count:,} accounts x {days} days)"
    opts = bench.Options(
        accounts=shape.accounts,
        days=shape.days,
        duration=shape.duration,
        warmup=shape.warmup,
        concurrency=(shape.concurrency,),
        heavy_concurrency=(1,),
        heavy_requests=1,
        database=path,
        profile=None,
    )
    return str(asyncio.run(bench.build(url, "sqlite", opts)))


def bench_shape(url: str) -> tuple[int, int]:
    """Accounts and days of samples in an existing database (``bench/api.py``'s reading)."""
    count, days = asyncio.run(bench.shape_of(url))
    return int(count), int(days)


def run(shape: Shape, database: Path | None) -> Outcome:
    """Build, serve, warm up, load, read the server throughout; the figures."""
    with tempfile.TemporaryDirectory(prefix="fedimeter-load-") as folder:
        path = database or Path(folder) / "load.sqlite3"
        url = f"sqlite:///{path}"
        print(f"building {shape.accounts:,} accounts x {shape.days} days ...", flush=True)
        outcome = Outcome(shape=shape, built=prepare(url, path, shape))
        print(f"  {outcome.built}; serving ...", flush=True)
        before = asyncio.run(counts(url))
        serving = Path(folder) / "serve"
        serving.mkdir()
        server = start_server(url, serving, secrets.token_hex(32))
        try:
            mix = [
                k
                for k in kinds(shape.accounts, shape.days)
                if not any(s in k.name for s in shape.skip)
            ]
            load = Load(server, mix, shape)
            print(f"  warming up for {shape.warmup:g} s ...", flush=True)
            asyncio.run(load.warm_up())
            time.sleep(SETTLE)
            files_start = open_files(load.pid)
            print(f"  loading for {shape.duration:g} s ...", flush=True)
            first, last, generator_cpu = asyncio.run(load.measure())
            files_end = open_files(load.pid)
            outcome.alive_at_end = server.process.poll() is None
            outcome.ready_at_end = ready(str(server.base_url))
            outcome.rss_peak = int(bench.usage(load.pid).peak_rss)
        finally:
            server.stop()
        outcome.server_exit = server.process.returncode
        log = Path(server.log).read_text(errors="replace")
        outcome.log_trouble = [line for line in log.splitlines() if LOG_TROUBLE.search(line)][:20]
        after = asyncio.run(counts(url))
    outcome.written = [
        f"{key}: {before.get(key, 0)} -> {after.get(key, 0)}"
        for key in sorted(before.keys() | after.keys())
        if before.get(key, 0) != after.get(key, 0)
    ]
    figure(outcome, load, first, last, generator_cpu)
    database_files = str(path)

    def split(files: Counter[str]) -> tuple[int, int, int]:
        ours = sum(n for target, n in files.items() if target.startswith(database_files))
        fonts = sum(n for target, n in files.items() if _FONT_FILE.search(target))
        return ours, fonts, sum(files.values()) - ours - fonts

    outcome.fds_database_start, outcome.fds_font_start, outcome.fds_other_start = split(files_start)
    outcome.fds_database_end, outcome.fds_font_end, outcome.fds_other_end = split(files_end)
    outcome.fds_added = [f"{target} +{n}" for target, n in (files_end - files_start).items()]
    return outcome


def ready(base_url: str) -> bool:
    """Whether ``/readyz`` answers 200."""
    try:
        return httpx.get(f"{base_url}/readyz", timeout=10, trust_env=False).is_success
    except httpx.HTTPError:
        return False


def figure(outcome: Outcome, load: Load, first: Reading, last: Reading, gen_cpu: float) -> None:
    """Fill ``outcome`` from the answers and readings of ``load``."""
    shape = outcome.shape
    answers = load.answers
    outcome.requests = len(answers)
    outcome.requests_per_second = len(answers) / shape.duration
    outcome.statuses = dict(Counter(a.got for a in answers).most_common())
    outcome.failures = sum(1 for a in answers if not a.got.isdigit() and a.got != HANG_UP) + sum(
        1 for a in answers if a.got.isdigit() and int(a.got) >= 500
    )
    outcome.unexpected = sum(1 for a in answers if not a.expected)
    outcome.hung_up = sum(1 for a in answers if a.got == HANG_UP)
    heavy_names = {k.name for k in load.heavy}
    for kind in [*load.light, *load.heavy]:
        mine = [a for a in answers if a.kind == kind.name]
        answered = [a.seconds for a in mine if a.got != HANG_UP]
        outcome.kinds.append(
            KindFigures(
                kind=kind.name,
                expect=kind.expect,
                heavy=kind.name in heavy_names,
                requests=len(mine),
                answers=dict(Counter(a.got for a in mine).most_common()),
                unexpected=sum(1 for a in mine if not a.expected),
                p50=percentile(answered, 50),
                p99=percentile(answered, 99),
                example=load.examples.get(kind.name, ""),
            )
        )
    readings = load.readings
    outcome.readings = readings
    _memory(outcome, readings, first, last)
    half = shape.duration / 2
    outcome.fds_start, outcome.fds_end = first.fds, last.fds
    outcome.fds_max = max(r.fds for r in readings)
    outcome.threads_start, outcome.threads_end = first.threads, last.threads
    light = [a for a in answers if not a.heavy and a.got != HANG_UP]
    early = [a.seconds for a in light if a.sent < half]
    late = [a.seconds for a in light if a.sent >= half]
    outcome.light_p50_first, outcome.light_p99_first = percentile(early, 50), percentile(early, 99)
    outcome.light_p50_second, outcome.light_p99_second = percentile(late, 50), percentile(late, 99)
    window = last.at
    outcome.server_cpu_share = (last.cpu - first.cpu) / window if window else 0.0
    outcome.generator_cpu_share = gen_cpu / shape.duration
    rows = max(1, math.ceil(shape.duration / shape.interval))
    for row in range(rows):
        start, end = row * shape.interval, min(shape.duration, (row + 1) * shape.interval)
        last_row = row == rows - 1
        mine = [a for a in answers if start <= a.sent < end or (last_row and a.sent >= end)]
        light_here = [a.seconds for a in mine if not a.heavy and a.got != HANG_UP]
        heavy_here = [a.seconds for a in mine if a.heavy and a.got != HANG_UP]
        upto = [r for r in readings if r.at <= end + (SETTLE + 1 if last_row else 0)]
        at_end = upto[-1] if upto else first
        at_start = [r for r in readings if r.at <= start][-1]
        cpu = (at_end.cpu - at_start.cpu) / len(mine) if mine else 0.0
        outcome.intervals.append(
            Interval(
                start=start,
                end=end,
                requests=len(mine),
                failures=sum(1 for a in mine if not a.expected),
                light_p50=percentile(light_here, 50),
                light_p99=percentile(light_here, 99),
                heavy_max=max(heavy_here, default=0.0),
                cpu_per_request=cpu,
                rss_end=at_end.rss,
                fds_end=at_end.fds,
            )
        )


# --- printing --------------------------------------------------------------------------------


def _memory(outcome: Outcome, readings: list[Reading], first: Reading, last: Reading) -> None:
    """The RSS figures: start, end, peaks and medians by third, the fit, the limit."""
    shape = outcome.shape
    outcome.rss_start, outcome.rss_end = first.rss, last.rss
    outcome.rss_max = max(r.rss for r in readings)
    half = shape.duration / 2
    second = [(r.at, float(r.rss)) for r in readings if r.at >= half]
    per_second = slope(second)
    outcome.rss_slope_per_minute = per_second * 60
    outcome.rss_growth_second_half = per_second * half
    third = shape.duration / 3
    outcome.rss_peak_first = max((r.rss for r in readings if r.at < third), default=first.rss)
    outcome.rss_peak_last = max((r.rss for r in readings if r.at >= 2 * third), default=last.rss)
    outcome.rss_peak_growth = outcome.rss_peak_last - outcome.rss_peak_first
    middle = [r.rss for r in readings if third <= r.at < 2 * third] or [first.rss]
    late = [r.rss for r in readings if r.at >= 2 * third] or [last.rss]
    outcome.rss_median_middle = int(statistics.median(middle))
    outcome.rss_median_last = int(statistics.median(late))
    outcome.rss_median_growth = outcome.rss_median_last - outcome.rss_median_middle
    if shape.warmup >= SETTLED_AFTER:
        outcome.rss_growth_limit = RSS_GROWTH_LIMIT
    else:
        outcome.rss_growth_limit = RSS_GROWTH_LIMIT_UNSETTLED


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}" if seconds < 1 else f"{seconds * 1000:,.0f}"


def _mib(value: float, *, sign: bool = False) -> str:
    return f"{value / 2**20:+.1f} MiB" if sign else f"{value / 2**20:.1f} MiB"


def print_outcome(outcome: Outcome) -> None:
    """The tables and the verdict."""
    shape = outcome.shape
    unit = "minute" if shape.interval == 60 else f"{shape.interval:g} s"
    print(
        f"\nper {unit} (light: the mix, its latency; heavy: the heavy lane's slowest; failures:"
        " answers not as expected; CPU: the server's per request; RSS and fds: at the end)"
    )
    print(
        f"  {'from':>6} {'to':>6} {'requests':>9} {'failures':>9} {'light p50':>10}"
        f" {'light p99':>10} {'heavy max':>10} {'CPU/req':>10} {'RSS':>10} {'fds':>5}"
    )
    for row in outcome.intervals:
        print(
            f"  {row.start:>5.0f}s {row.end:>5.0f}s {row.requests:>9,} {row.failures:>9}"
            f" {_ms(row.light_p50):>7} ms {_ms(row.light_p99):>7} ms {_ms(row.heavy_max):>7} ms"
            f" {_ms(row.cpu_per_request):>7} ms {row.rss_end / 2**20:>6.1f} MiB {row.fds_end:>5}"
        )
    print("\nby kind (ms; answers by status, or the exception)")
    print(f"  {'kind':<42} {'want':>4} {'requests':>8} {'p50':>8} {'p99':>8}  answers")
    for k in outcome.kinds:
        got = ", ".join(f"{status} {n:,}" for status, n in k.answers.items())
        lane = " (heavy)" if k.heavy else ""
        print(
            f"  {(k.kind + lane)[:42]:<42} {k.expect:>4} {k.requests:>8,} {_ms(k.p50):>8}"
            f" {_ms(k.p99):>8}  {got}"
            + (f"  UNEXPECTED e.g. {k.example!r}" if k.unexpected else "")
        )
    goals = outcome.goals
    o = outcome
    p50 = f"<= {P50_FACTOR:g}x + {P50_SLACK * 1000:g} ms"
    p99 = f"<= {P99_FACTOR:g}x + {P99_SLACK * 1000:g} ms"
    statuses = ", ".join(f"{s} {n:,}" for s, n in o.statuses.items())
    cpu = f"{o.server_cpu_share:.0%} / {o.generator_cpu_share:.0%} of a core"
    rows = [
        ("requests (req/s)", f"{o.requests:,} ({o.requests_per_second:,.0f}/s)", ""),
        ("answers by status", statuses, ""),
        ("failures (5xx, connection errors)", f"{o.failures}", "0"),
        ("answers not as expected", f"{o.unexpected}", "0"),
        ("hang-ups made on purpose", f"{o.hung_up}", ""),
        ("light p50: first half / second", _pair(o.light_p50_first, o.light_p50_second), p50),
        ("light p99: first half / second", _pair(o.light_p99_first, o.light_p99_second), p99),
        ("RSS after warm-up", _mib(o.rss_start), ""),
        ("RSS max (readings)", _mib(o.rss_max), ""),
        ("RSS at the end", _mib(o.rss_end), ""),
        ("RSS peak (VmHWM, warm-up too)", _mib(o.rss_peak), ""),
        ("RSS end - start", _mib(o.rss_end - o.rss_start, sign=True), ""),
        ("RSS slope, second half", f"{o.rss_slope_per_minute / 2**20:+.2f} MiB/min", ""),
        ("RSS growth, second half (fit)", _mib(o.rss_growth_second_half, sign=True), ""),
        (
            "RSS peak: first third / last third",
            f"{_mib(o.rss_peak_first)} / {_mib(o.rss_peak_last)}",
            "",
        ),
        ("RSS peak growth, last third", _mib(o.rss_peak_growth, sign=True), ""),
        (
            "RSS median: middle third / last",
            f"{_mib(o.rss_median_middle)} / {_mib(o.rss_median_last)}",
            "",
        ),
        (
            "RSS median growth, last third",
            _mib(o.rss_median_growth, sign=True),
            f"<= {_mib(o.rss_growth_limit)}",
        ),
        ("open fds: start / max / end", f"{o.fds_start} / {o.fds_max} / {o.fds_end}", ""),
        (
            "  neither the database's nor fonts: start / end",
            f"{o.fds_other_start} / {o.fds_other_end}",
            "end <= start",
        ),
        (
            "  font files (matplotlib's cache): start / end",
            f"{o.fds_font_start} / {o.fds_font_end}",
            f"end <= {FONT_FILES_MAX}",
        ),
        (
            "  the database's files: start / end",
            f"{o.fds_database_start} / {o.fds_database_end}",
            f"end <= start + {DATABASE_FILES_SLACK}",
        ),
        ("threads: start / end", f"{o.threads_start} / {o.threads_end}", ""),
        ("CPU: server / load generator", cpu, ""),
        ("alive and ready at the end", f"{o.alive_at_end} / {o.ready_at_end}", "True / True"),
        ("changed by the refused writes", "; ".join(o.written) or "nothing", "nothing"),
        ("exit code on SIGTERM", f"{o.server_exit}", "0"),
        ("trouble in the server's log", f"{len(o.log_trouble)} lines", "0"),
    ]
    print(
        f"\n{shape.accounts:,} accounts x {shape.days} days; {shape.duration:g} s after"
        f" {shape.warmup:g} s of warm-up, {shape.concurrency} connections"
    )
    print(f"  {'':<36} {'measured':>34} {'goal':>22}")
    for label, value, goal in rows:
        print(f"  {label:<36} {value:>34} {goal:>22}")
    if outcome.fds_added:
        print(f"  descriptors added: {', '.join(outcome.fds_added)}")
    for line in outcome.log_trouble[:5]:
        print(f"  log: {line[:160]}")
    for name, held in goals.items():
        print(f"  goal {name}: {'met' if held else 'FAILED'}")
    print(f"verdict: {'every goal met' if outcome.ok else 'FAILED'}")


def _pair(first: float, second: float) -> str:
    return f"{_ms(first)} / {_ms(second)} ms"


def main(argv: list[str] | None = None) -> int:
    """Load the server; print the tables; 0 when every goal held."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--accounts", type=int, help=f"default {FULL.accounts:,} (ci {CI.accounts:,})"
    )
    parser.add_argument("--days", type=int, help=f"days of samples, {FULL.days} (ci {CI.days})")
    parser.add_argument(
        "--duration",
        type=float,
        help=f"seconds of measured load, {FULL.duration:g} (ci {CI.duration:g})",
    )
    parser.add_argument(
        "--warmup", type=float, help=f"seconds of warm-up, {FULL.warmup:g} (ci {CI.warmup:g})"
    )
    parser.add_argument(
        "--concurrency", type=int, help=f"connections (one heavy), default {FULL.concurrency}"
    )
    parser.add_argument("--database", type=Path, help="SQLite file to build once and reuse (kept)")
    parser.add_argument(
        "--sample-every",
        type=float,
        help=f"seconds between readings of the server, {FULL.sample_every:g}"
        f" (ci {CI.sample_every:g})",
    )
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="TEXT",
        help="leave out the kinds of request whose name contains TEXT (repeatable)",
    )
    parser.add_argument("--ci", action="store_true", help="the bounded form CI runs")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    base = CI if args.ci else FULL
    duration = args.duration or base.duration
    shape = Shape(
        accounts=args.accounts or base.accounts,
        days=args.days or base.days,
        duration=duration,
        warmup=args.warmup if args.warmup is not None else base.warmup,
        concurrency=args.concurrency or base.concurrency,
        sample_every=args.sample_every or base.sample_every,
        seed=args.seed,
        skip=tuple(args.skip),
    )
    if not [k for k in kinds(1, bench.MIN_DAYS) if not any(s in k.name for s in shape.skip)]:
        parser.error("--skip leaves no request to send")
    if shape.concurrency < 2 or shape.accounts < 1 or shape.duration <= 0 or shape.warmup < 0:
        parser.error("--concurrency must be at least 2, --accounts 1, --duration positive")
    if shape.days < bench.MIN_DAYS:
        parser.error(f"--days must be at least {bench.MIN_DAYS} (the report reads that many)")
    print(
        f"fedimeter load run: {shape.accounts:,} accounts x {shape.days} days, SQLite,"
        f" {shape.duration:g} s of load after {shape.warmup:g} s of warm-up,"
        f" {shape.concurrency} connections, seed {shape.seed};"
        f" Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    print(bench._versions())  # noqa: SLF001
    outcome = run(shape, args.database)
    print_outcome(outcome)
    if args.json:
        args.json.write_text(
            json.dumps(dict(asdict(outcome), ok=outcome.ok, goals=outcome.goals), indent=2)
        )
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
