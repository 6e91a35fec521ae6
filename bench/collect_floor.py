"""CPU per request of each layer of fedimeter's HTTP path, down to the bare floor.

``python bench/collect.py --floor`` runs this. One simulated Mastodon 4.1 instance serves
account answers on 127.0.0.1 in its own process, without latency or rate limit; each client
below sends the same ``GET /api/v1/accounts/:id`` requests over kept-alive connections,
``IN_FLIGHT`` at a time, and the CPU of this process per request is what it costs:

- **h11 over a bare asyncio stream**: the floor for HTTP/1.1 in Python. No guard, no pool,
  no timeouts, no size cap: nothing fedimeter could use, only what any client must pay;
- **httpx.AsyncClient**: httpx's own stack (httpcore's pool over anyio), what most Python
  tools use, and what fedimeter used before;
- **GuardedTransport**: fedimeter's transport (SSRF guard, pool, h11 connection, timeouts);
- **Fetcher.get_json**: the whole path a round uses, with pacing, retries, the size cap and
  strict JSON.

Each is run ``RUNS`` times; the table shows the fastest and the median.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import statistics
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeAlias

import h11
import httpx

from fedimeter.config import Settings
from fedimeter.fediverse.http import Fetcher
from fedimeter.fediverse.transport import GuardedTransport
from fedimeter.simfedi import SimFediverse

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

REQUESTS = 2000
IN_FLIGHT = 4
RUNS = 5
ACCOUNTS = 50


def _server(conn: Connection) -> None:
    """Serve one instance until told to stop; send its port and account ids first."""
    world = SimFediverse(seed=1)
    instance = world.add_instance("floor", version="4.1.20", rate_limit=None)
    accounts = [
        instance.add_account(f"user{i}", followers=i, following=i, statuses=i)
        for i in range(ACCOUNTS)
    ]
    with world.run_in_thread():
        conn.send((instance.address.port or 80, [a.id for a in accounts]))
        conn.recv()


#: ``client(port, account_ids)`` sends ``REQUESTS`` requests, returns their CPU seconds.
Client: TypeAlias = Callable[[int, list[str]], Coroutine[Any, Any, float]]


async def _spread(send: Callable[[str], Awaitable[None]], ids: list[str]) -> float:
    """``REQUESTS`` requests, ``IN_FLIGHT`` at a time, over the accounts in turn.

    Returns:
        The CPU seconds they took, after one request per connection to open them (setting
        up the client and its TLS context is not counted).
    """

    async def worker(first: int, step: int, count: int) -> None:
        for i in range(first, count, step):
            await send(f"/api/v1/accounts/{ids[i % len(ids)]}")

    await asyncio.gather(*(worker(k, IN_FLIGHT, IN_FLIGHT) for k in range(IN_FLIGHT)))
    started = time.process_time()
    await asyncio.gather(*(worker(k, IN_FLIGHT, REQUESTS) for k in range(IN_FLIGHT)))
    return time.process_time() - started


async def _bare_h11(port: int, ids: list[str]) -> float:
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

    cpu = await _spread(send, ids)
    for _, writer in streams:
        writer.close()
    return cpu


async def _httpx_client(port: int, ids: list[str]) -> float:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

        async def send(path: str) -> None:
            (await client.get(path)).json()

        return await _spread(send, ids)


def _settings() -> Settings:
    return Settings(
        database_url="sqlite:///unused", allow_private_addresses=True, default_scheme="http"
    )


async def _guarded(port: int, ids: list[str]) -> float:
    transport = GuardedTransport(_settings())
    timeout = httpx.Timeout(10.0).as_dict()

    async def send(path: str) -> None:
        request = httpx.Request(
            "GET", f"http://127.0.0.1:{port}{path}", extensions={"timeout": timeout}
        )
        response = await transport.handle_async_request(request)
        json.loads(await response.aread())
        await response.aclose()

    cpu = await _spread(send, ids)
    await transport.aclose()
    return cpu


async def _fetcher(port: int, ids: list[str]) -> float:
    settings = _settings()
    transport = GuardedTransport(settings)
    fetcher = Fetcher(settings, transport)

    async def send(path: str) -> None:
        await fetcher.get_json(f"http://127.0.0.1:{port}{path}")

    cpu = await _spread(send, ids)
    await transport.aclose()
    return cpu


CLIENTS: dict[str, Client] = {
    "h11 over a bare asyncio stream (the floor)": _bare_h11,
    "httpx.AsyncClient (httpcore's pool, anyio)": _httpx_client,
    "GuardedTransport": _guarded,
    "Fetcher.get_json (what a round uses)": _fetcher,
}


def _cpu_per_request(client: Client, port: int, ids: list[str]) -> float:
    """Microseconds of this process's CPU per request, one run in a fresh event loop."""
    return asyncio.run(client(port, ids)) / REQUESTS * 1e6


def run_floor() -> None:
    """Start the server, time every client ``RUNS`` times, print the table."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    server = context.Process(target=_server, args=(theirs,), daemon=True)
    server.start()
    try:
        port, ids = ours.recv()
        print(
            f"CPU per request: {REQUESTS:,} GET /api/v1/accounts/:id to one simulated Mastodon"
            f" on loopback, {IN_FLIGHT} in flight, kept-alive connections; {RUNS} runs each."
        )
        print()
        width = max(len(name) for name in CLIENTS)
        print(f"{'':{width}}  {'fastest':>9}  {'median':>9}")
        for name, client in CLIENTS.items():
            runs = [_cpu_per_request(client, port, ids) for _ in range(RUNS)]
            print(f"{name:{width}}  {min(runs):6.0f} us  {statistics.median(runs):6.0f} us")
    finally:
        ours.send("stop")
        server.join(10)
