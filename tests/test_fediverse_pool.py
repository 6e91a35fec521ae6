import asyncio

import httpx
import pytest

from fedimeter.errors import BadResponse
from fedimeter.fediverse import GuardedTransport
from fedimeter.fediverse.http import Fetcher
from fedimeter.fediverse.pool import ConnectionPool
from fedimeter.fediverse.transport import GuardedConnector
from test_fediverse_support import KeepAliveServer, make_settings


def transport(**settings: object) -> GuardedTransport:
    """A guarded transport that may reach loopback."""
    return GuardedTransport(make_settings(allow_private_addresses=True, **settings))


async def get(through: httpx.AsyncBaseTransport, url: str, pool: float = 5.0) -> bytes:
    """GET ``url`` and read the whole body."""
    timeout = httpx.Timeout(5.0, pool=pool).as_dict()
    response = await through.handle_async_request(
        httpx.Request("GET", url, extensions={"timeout": timeout})
    )
    try:
        return await response.aread()
    finally:
        await response.aclose()


async def test_requests_to_one_server_share_one_connection() -> None:
    """One after the other, three requests to one server use a single kept-alive connection."""
    async with KeepAliveServer() as server:
        guarded = transport()
        for _ in range(3):
            assert await get(guarded, f"{server.url}/x") == b'{"ok": true}'
        await guarded.aclose()
    assert server.requests == 3
    assert server.connections == 1


async def test_concurrent_requests_open_no_more_connections_than_allowed() -> None:
    """Six requests at once with max_connections=2 wait for each other, on two connections."""
    async with KeepAliveServer(delay=0.05) as server:
        guarded = transport(max_connections=2)
        bodies = await asyncio.gather(*(get(guarded, f"{server.url}/{i}") for i in range(6)))
        await guarded.aclose()
    assert bodies == [b'{"ok": true}'] * 6
    assert server.most_open == 2
    assert server.connections == 2


async def test_a_new_origin_at_the_limit_closes_the_idle_connection_unused_longest() -> None:
    """At max_connections, another server gets its connection by closing the oldest idle one."""
    async with KeepAliveServer() as first, KeepAliveServer() as second:
        guarded = transport(max_connections=1)
        await get(guarded, f"{first.url}/a")
        await get(guarded, f"{second.url}/b")
        await asyncio.sleep(0.05)  # let the first server see its connection close
        assert first.open == 0
        assert second.open == 1
        await get(guarded, f"{first.url}/c")
        await guarded.aclose()
    assert first.connections == 2


async def test_pool_timeout_when_every_connection_stays_busy() -> None:
    """With the only connection busy on a slow answer, the next request times out waiting."""
    async with KeepAliveServer(delay=0.5) as server:
        guarded = transport(max_connections=1)
        held = asyncio.create_task(get(guarded, f"{server.url}/held"))
        await asyncio.sleep(0.05)
        with pytest.raises(httpx.PoolTimeout):
            await get(guarded, f"{server.url}/waits", pool=0.1)
        assert await held == b'{"ok": true}'
        assert await get(guarded, f"{server.url}/after") == b'{"ok": true}'
        await guarded.aclose()
    assert server.connections == 1


async def test_a_waiting_request_gets_the_connection_given_back() -> None:
    """A request waiting for a connection is sent as soon as the busy one is given back."""
    async with KeepAliveServer(delay=0.1) as server:
        guarded = transport(max_connections=1)
        held = asyncio.create_task(get(guarded, f"{server.url}/held"))
        await asyncio.sleep(0.02)
        waiting = asyncio.create_task(get(guarded, f"{server.url}/waits"))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        assert await held == b'{"ok": true}'
        assert await waiting == b'{"ok": true}'
        await guarded.aclose()
    assert server.connections == 1


async def test_a_connection_the_server_closed_is_not_reused() -> None:
    """A connection closed by the server while idle is dropped; the next request gets a new one."""
    async with KeepAliveServer(close_after_answer=True) as server:
        guarded = transport()
        await get(guarded, f"{server.url}/a")
        await asyncio.sleep(0.05)  # the server's close arrives
        assert await get(guarded, f"{server.url}/b") == b'{"ok": true}'
        await guarded.aclose()
    assert server.connections == 2


async def test_an_answer_over_the_limit_closes_its_connection() -> None:
    """An answer larger than max_response_bytes is refused, and its connection closed."""
    async with KeepAliveServer(body=b"x" * 100_000) as server:
        guarded = transport(max_response_bytes=10_000)
        with pytest.raises(BadResponse, match="larger than max_response_bytes"):
            await get(guarded, f"{server.url}/a")
        await asyncio.sleep(0.05)
        assert server.open == 0
        assert guarded.pool.open_connections == 0
        await guarded.aclose()


async def test_idle_connections_expire() -> None:
    """A connection idle for longer than the keep-alive expiry is closed, not reused."""
    async with KeepAliveServer() as server:
        connector = GuardedConnector(allow_private=True, ssl_context=httpx.create_ssl_context())
        pool = ConnectionPool(max_connections=4, keepalive_expiry=0.05, opener=connector.connect)
        request = b"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        for _ in range(2):
            answer = await pool.fetch(
                ("http", "127.0.0.1", server.port),
                request,
                limit=1000,
                error_limit=1000,
                read_timeout=5.0,
                connect_timeout=5.0,
                wait_deadline=None,
                deadline=None,
            )
            assert answer.body == b'{"ok": true}'
            assert pool.idle_connections == 1
            await asyncio.sleep(0.1)
        await pool.aclose()
        assert pool.open_connections == 0
    assert server.connections == 2


async def test_aclose_closes_idle_connections_and_busy_ones_when_their_answer_ends() -> None:
    """Closing the transport closes idle connections at once, busy ones when their answer ends."""
    async with KeepAliveServer(delay=0.2) as server:
        guarded = transport()
        await get(guarded, f"{server.url}/idle")
        busy = asyncio.create_task(get(guarded, f"{server.url}/busy"))
        await asyncio.sleep(0.05)
        await guarded.aclose()
        await asyncio.sleep(0.05)
        assert server.open == 1
        assert await busy == b'{"ok": true}'
        await asyncio.sleep(0.05)
        assert server.open == 0
        assert guarded.pool.open_connections == 0


async def test_fetcher_measures_many_hosts_over_few_connections() -> None:
    """Through the Fetcher, 40 requests over 4 servers with max_connections=3 all succeed."""
    servers = [KeepAliveServer(delay=0.01) for _ in range(4)]
    for server in servers:
        await server.__aenter__()
    try:
        guarded = transport(max_connections=3)
        fetcher = Fetcher(make_settings(allow_private_addresses=True, max_connections=3), guarded)
        replies = await asyncio.gather(
            *(fetcher.get_json(f"{servers[i % 4].url}/.well-known/x{i}") for i in range(40))
        )
        await guarded.aclose()
    finally:
        for server in servers:
            await server.__aexit__()
    assert all(reply.data == {"ok": True} for reply in replies)
    assert sum(server.requests for server in servers) == 40
    assert max(server.most_open for server in servers) <= 3
