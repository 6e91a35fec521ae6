"""CPU per request of each layer of fedimeter's HTTP path, down to the bare floor.

``python bench/collect.py --floor`` runs this. Simulated Mastodon 4.1 instances serve account
answers on 127.0.0.1 in their own process, without rate limit; each client below sends the same
``GET /api/v1/accounts/:id`` requests over kept-alive connections, ``IN_FLIGHT`` at a time, and
the CPU of this process per request is what it costs. Twice: **hot**, from a server that
answers at once (the client is never idle), and **waking**, from one that answers after the
round's 50-150 ms (the client sleeps between answers, as in a round, and each answer wakes it
with cold caches: the same code costs two to four times the CPU).

- **httptools over an asyncio protocol**: the floor for HTTP/1.1 in Python with a parser in C.
  No guard, no pool, no timeouts, no size cap: nothing fedimeter could use, only what any
  client must pay;
- **h11 over a bare asyncio stream**: the same with h11's pure-Python parser (what fedimeter
  used before httptools);
- **httpx.AsyncClient**: httpx's own stack (httpcore's pool over anyio), what most Python
  tools use, and what fedimeter used before;
- **GuardedTransport.fetch**: fedimeter's transport (SSRF guard, pool, connection, size caps,
  timeouts), as the collector uses it;
- **Fetcher.get_json**: the whole path a round uses, with pacing, retries, the size cap and
  strict JSON.

Each is run ``RUNS`` times; the table shows the fastest and the median.

Then the rest of what a round cannot do without, measured hot (a lower bound: in a round
each of these runs after a wake-up too): decoding an answer's JSON and turning it into a
snapshot (``parse_account``; a 40-account batch answer per account), and storing the samples
(``Repository.commit_batch`` into SQLite, 50 a transaction: the writer commits about once a
second, and a 10,000-account round lasts about 190 s). With the waking floor per request,
that gives the least CPU any Python collector built on these pieces spends on the
benchmark's round (``--accounts``, ``--hosts``: its minimum requests, of which how many ask
for one account).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeAlias

import h11
import httptools
import httpx
from sqlalchemy import insert

from fedimeter.config import Settings, normalise_database_url
from fedimeter.domain.models import InstanceAddress
from fedimeter.fediverse.http import Fetcher
from fedimeter.fediverse.parse import parse_account, parse_account_list
from fedimeter.fediverse.target import Targets
from fedimeter.fediverse.transport import GuardedTransport
from fedimeter.simfedi import SimFediverse
from fedimeter.storage.database import Database
from fedimeter.storage.records import NewSample, RunProgress
from fedimeter.storage.repository import Repository
from fedimeter.storage.tables import accounts as accounts_table

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

REQUESTS = 2000
#: Requests per run from the server with latency (about 40 a second at 4 in flight).
WAKING_REQUESTS = 400
WAKING_LATENCY = (0.05, 0.15)
IN_FLIGHT = 4
RUNS = 5
WAKING_RUNS = 3
ACCOUNTS = 50
#: Answers decoded and parsed per run, and runs; samples stored, and per transaction.
PARSED = 4000
PARSE_RUNS = 5
STORED = 10_000
STORE_BATCH = 50
BATCH = 40


@dataclass(frozen=True)
class RoundShape:
    """The benchmark round the floor is summed for."""

    accounts: int
    #: Its minimum requests, and how many of them ask for one account (no batch call).
    requests: int
    single: int


def _server(conn: Connection) -> None:
    """Serve two instances, hot and waking, until told to stop; send their ports and ids."""
    world = SimFediverse(seed=1)
    hot = world.add_instance("hot", version="4.1.20", rate_limit=None)
    waking = world.add_instance("waking", version="4.1.20", rate_limit=None, latency=WAKING_LATENCY)
    ids = [
        [
            instance.add_account(f"user{i}", followers=i, following=i, statuses=i).id
            for i in range(ACCOUNTS)
        ]
        for instance in (hot, waking)
    ]
    with world.run_in_thread():
        conn.send(([instance.address.port or 80 for instance in (hot, waking)], ids))
        conn.recv()


#: ``client(port, account_ids, requests)`` sends ``requests`` (None: ``REQUESTS``) requests and
#: returns their CPU seconds.
Client: TypeAlias = Callable[[int, list[str], int | None], Coroutine[Any, Any, float]]


async def _spread(
    send: Callable[[str], Awaitable[None]], ids: list[str], requests: int | None = None
) -> float:
    """``requests`` (``REQUESTS``), ``IN_FLIGHT`` at a time, over the accounts in turn.

    Returns:
        The CPU seconds they took, after one request per connection to open them (setting
        up the client and its TLS context is not counted).
    """

    async def worker(first: int, step: int, count: int) -> None:
        for i in range(first, count, step):
            await send(f"/api/v1/accounts/{ids[i % len(ids)]}")

    await asyncio.gather(*(worker(k, IN_FLIGHT, IN_FLIGHT) for k in range(IN_FLIGHT)))
    started = time.process_time()
    count = requests or REQUESTS
    await asyncio.gather(*(worker(k, IN_FLIGHT, count) for k in range(IN_FLIGHT)))
    return time.process_time() - started


class _Answer(asyncio.Protocol):
    """httptools' callbacks and asyncio's protocol in one: one answer at a time."""

    transport: asyncio.Transport

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.body: list[bytes] = []
        self.done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream: a Transport

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.done.set_result(b"".join(self.body))
        self.body = []


async def _bare_httptools(port: int, ids: list[str], requests: int | None) -> float:
    loop = asyncio.get_running_loop()
    protocols = [
        (await loop.create_connection(_Answer, "127.0.0.1", port))[1] for _ in range(IN_FLIGHT)
    ]
    free = list(protocols)
    host = f"127.0.0.1:{port}".encode()

    async def send(path: str) -> None:
        protocol = free.pop()
        protocol.done = loop.create_future()
        protocol.transport.write(
            b"GET " + path.encode() + b" HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"
        )
        json.loads(await protocol.done)
        free.append(protocol)

    cpu = await _spread(send, ids, requests)
    for protocol in protocols:
        protocol.transport.close()
    return cpu


async def _bare_h11(port: int, ids: list[str], requests: int | None) -> float:
    streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(IN_FLIGHT)]
    free = list(streams)
    host = f"127.0.0.1:{port}"

    async def send(path: str) -> None:
        reader, writer = free.pop()
        protocol = h11.Connection(h11.CLIENT)
        request = h11.Request(method="GET", target=path, headers=[("Host", host)])
        writer.write((protocol.send(request) or b"") + (protocol.send(h11.EndOfMessage()) or b""))
        body = bytearray()
        while True:
            event = protocol.next_event()
            if event is h11.NEED_DATA:
                protocol.receive_data(await reader.read(65536))
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
        json.loads(body)
        free.append((reader, writer))

    cpu = await _spread(send, ids, requests)
    for _, writer in streams:
        writer.close()
    return cpu


async def _httpx_client(port: int, ids: list[str], requests: int | None) -> float:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

        async def send(path: str) -> None:
            (await client.get(path)).json()

        return await _spread(send, ids, requests)


def _settings() -> Settings:
    return Settings(
        database_url="sqlite:///unused", allow_private_addresses=True, default_scheme="http"
    )


async def _guarded(port: int, ids: list[str], requests: int | None) -> float:
    transport = GuardedTransport(_settings())
    headers = ((b"Accept", b"application/json"),)
    loop = asyncio.get_running_loop()
    targets = Targets()

    async def send(path: str) -> None:
        answer = await transport.fetch(
            targets.parse(f"http://127.0.0.1:{port}{path}"),
            headers,
            limit=10_000_000,
            error_limit=65536,
            read_timeout=10.0,
            connect_timeout=10.0,
            deadline=loop.time() + 30.0,
        )
        json.loads(answer.body or b"")

    cpu = await _spread(send, ids, requests)
    await transport.aclose()
    return cpu


async def _fetcher(port: int, ids: list[str], requests: int | None) -> float:
    settings = _settings()
    transport = GuardedTransport(settings)
    fetcher = Fetcher(settings, transport)

    async def send(path: str) -> None:
        await fetcher.get_json(f"http://127.0.0.1:{port}{path}")

    cpu = await _spread(send, ids, requests)
    await transport.aclose()
    return cpu


CLIENTS: dict[str, Client] = {
    "httptools over an asyncio protocol (the floor)": _bare_httptools,
    "h11 over a bare asyncio stream": _bare_h11,
    "httpx.AsyncClient (httpcore's pool, anyio)": _httpx_client,
    "GuardedTransport.fetch": _guarded,
    "Fetcher.get_json (what a round uses)": _fetcher,
}


def _cpu_per_request(client: Client, port: int, ids: list[str], requests: int) -> float:
    """Microseconds of this process's CPU per request, one run in a fresh event loop."""
    return asyncio.run(client(port, ids, requests)) / requests * 1e6


def _account_body(port: int, remote_id: str) -> bytes:
    """One account's answer, as the simulated Mastodon sends it."""
    answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/accounts/{remote_id}", timeout=10)
    answer.raise_for_status()
    return answer.content


def _parse_cost(body: bytes) -> tuple[float, float]:
    """CPU microseconds per account: a one-account answer decoded and parsed; a batch's.

    Fastest of ``PARSE_RUNS``.
    """
    one = json.loads(body)
    ids = [str(n) for n in range(1, BATCH + 1)]
    batch = json.dumps([{**one, "id": i} for i in ids]).encode()
    asked = str(one["id"])
    single: list[float] = []
    batched: list[float] = []
    for _ in range(PARSE_RUNS):
        started = time.process_time()
        for _ in range(PARSED):
            parse_account(json.loads(body), asked=asked, host="127.0.0.1")
        single.append((time.process_time() - started) / PARSED * 1e6)
        started = time.process_time()
        for _ in range(PARSED // BATCH):
            parse_account_list(json.loads(batch), asked=ids, host="127.0.0.1")
        batched.append((time.process_time() - started) / (PARSED // BATCH * BATCH) * 1e6)
    return min(single), min(batched)


async def _store_cost() -> tuple[float, float]:
    """CPU microseconds per sample stored, ``STORE_BATCH`` a transaction, into SQLite.

    Through fedimeter's repository (the process's CPU: aiosqlite runs SQLite in a thread of
    its own), then by Python's sqlite3 alone (``_raw_store_cost``).
    """
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="fedimeter-floor-") as tmp:
        db = await Database.open(normalise_database_url(f"sqlite:///{tmp}/floor.sqlite3"))
        try:
            repo = Repository(db)
            instance = await repo.ensure_instance(
                InstanceAddress("127.0.0.1", scheme="http", port=8080), now
            )
            async with db.begin() as conn:
                await conn.execute(
                    insert(accounts_table),
                    [
                        {
                            "acct_key": f"user{n}@127.0.0.1:8080",
                            "username": f"user{n}",
                            "domain": "127.0.0.1:8080",
                            "instance_id": instance.id,
                            "remote_id": str(n),
                            "display_name": f"user{n}",
                            "url": f"http://127.0.0.1:8080/@user{n}",
                            "state": "active",
                            "added_at": now,
                            "state_changed_at": now,
                            "consecutive_failures": 0,
                        }
                        for n in range(1, STORED + 1)
                    ],
                )
            run, _ = await repo.start_run(now, "floor", lambda _run: False)
            samples = [
                NewSample(n, now, 1000 + n, 100 + n, 5000 + n, now.date())
                for n in range(1, STORED + 1)
            ]
            started = time.process_time()
            for first in range(0, STORED, STORE_BATCH):
                chunk = samples[first : first + STORE_BATCH]
                await repo.commit_batch(
                    run.id, now, RunProgress(accounts_measured=first + len(chunk)), samples=chunk
                )
            ours = (time.process_time() - started) / STORED * 1e6
        finally:
            await db.close()
        return ours, _raw_store_cost(f"{tmp}/floor.sqlite3", run.id)


def _raw_store_cost(path: str, run_id: int) -> float:
    """CPU microseconds per sample written by Python's sqlite3 alone, as ``_store_cost`` does.

    The same rows into the same table (its index, WAL, ``synchronous=NORMAL``), a day later
    so that none is a repeat, ``STORE_BATCH`` a transaction with the round's totals: what
    storing costs with no SQLAlchemy, no aiosqlite thread and no type conversion.
    """
    later = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=1)
    stamp = later.isoformat(sep=" ")
    rows = [
        (n, stamp, 1000 + n, 100 + n, 5000 + n, later.date().isoformat(), run_id)
        for n in range(1, STORED + 1)
    ]
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        started = time.process_time()
        for first in range(0, STORED, STORE_BATCH):
            db.execute("BEGIN")
            db.executemany(
                "INSERT OR IGNORE INTO account_samples (account_id, taken_at, followers,"
                " following, statuses, last_status_at, run_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows[first : first + STORE_BATCH],
            )
            db.execute(
                "UPDATE runs SET heartbeat_at = ?, accounts_measured = ? WHERE id = ?",
                (stamp, first + STORE_BATCH, run_id),
            )
            db.execute("COMMIT")
        return (time.process_time() - started) / STORED * 1e6
    finally:
        db.close()


def _print_round_floor(round_shape: RoundShape, port: int, remote_id: str, http: float) -> None:
    """The rest of a round's necessary work, and the sum for the benchmark's round."""
    single, batched = _parse_cost(_account_body(port, remote_id))
    store, raw = asyncio.run(_store_cost())
    r = round_shape
    batch_accounts = r.accounts - r.single
    parts = {
        f"HTTP: {r.requests:,} requests x {http:.0f} us (the floor, waking)": r.requests * http,
        f"JSON and snapshot: {r.single:,} one-account answers x {single:.0f} us": r.single * single,
        f"JSON and snapshots: {batch_accounts:,} accounts in batch answers x {batched:.0f} us": (
            batch_accounts * batched
        ),
        f"storing: {r.accounts:,} samples x {store:.0f} us ({STORE_BATCH} a transaction)": (
            r.accounts * store
        ),
    }
    print()
    print(
        f"The least CPU of a round of {r.accounts:,} accounts ({r.requests:,} requests, the"
        " minimum; besides HTTP measured hot, fastest of several runs):"
    )
    width = max(len(label) for label in parts)
    for label, micros in parts.items():
        print(f"  {label:{width}}  {micros / 1e6:5.2f} s")
    print(
        f"  {'sum: no pacing, no retries, no round bookkeeping':{width}}  "
        f"{sum(parts.values()) / 1e6:5.2f} s"
    )
    print(
        f"  (storing by Python's sqlite3 alone, no SQLAlchemy or aiosqlite: {raw:.0f} us a"
        f" sample, {r.accounts * raw / 1e6:.2f} s)"
    )


def run_floor(round_shape: RoundShape | None = None) -> None:
    """Start the servers, time every client hot and waking, print the table.

    With ``round_shape``, then the rest of a round's necessary work and its sum.
    """
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    server = context.Process(target=_server, args=(theirs,), daemon=True)
    server.start()
    try:
        (hot_port, waking_port), (hot_ids, waking_ids) = ours.recv()
        low, high = (int(s * 1000) for s in WAKING_LATENCY)
        print(
            f"CPU per request: GET /api/v1/accounts/:id to a simulated Mastodon on loopback, "
            f"{IN_FLIGHT} in flight, kept-alive connections. Hot: {REQUESTS:,} requests "
            f"answered at once, fastest and median of {RUNS} runs. Waking: {WAKING_REQUESTS:,}"
            f" requests answered after {low}-{high} ms, fastest and median of {WAKING_RUNS}."
        )
        print()
        width = max(len(name) for name in CLIENTS)
        print(f"{'':{width}}  {'hot':>19}  {'waking':>19}")
        floor_waking = 0.0
        for name, client in CLIENTS.items():
            hot = [_cpu_per_request(client, hot_port, hot_ids, REQUESTS) for _ in range(RUNS)]
            waking = [
                _cpu_per_request(client, waking_port, waking_ids, WAKING_REQUESTS)
                for _ in range(WAKING_RUNS)
            ]
            if client is _bare_httptools:
                floor_waking = min(waking)
            print(
                f"{name:{width}}  {min(hot):5.0f} / {statistics.median(hot):5.0f} us"
                f"  {min(waking):5.0f} / {statistics.median(waking):5.0f} us",
                flush=True,
            )
        if round_shape is not None:
            _print_round_floor(round_shape, hot_port, hot_ids[0], floor_waking)
    finally:
        ours.send("stop")
        server.join(10)
