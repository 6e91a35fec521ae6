"""Keep-alive HTTP/1.1 connections, reused per origin, at most ``max_connections`` open at once.

httpcore's ``AsyncConnectionPool`` re-examines every connection it holds each time a request
starts or ends, and for each idle one counts all of them again and polls its socket: with 64
connections spread over 50 hosts that bookkeeping cost more CPU than sending the requests
(about 2.5 of the 9.4 CPU-seconds of a 10,000-account round, see docs/performance.md). This pool
keeps idle connections by origin, so finding one is a dictionary lookup and one check of that
connection alone.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import httpx

from fedimeter.fediverse.connection import httpx_errors, open_connection

if TYPE_CHECKING:
    import ssl
    from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable

    import httpcore

    from fedimeter.fediverse.connection import Connection, Origin

__all__ = ["ConnectionPool"]

_DEFAULT_PORTS = {b"http": 80, b"https": 443}


class ConnectionPool:
    """Send requests over reused connections; at most ``max_connections`` are open at once.

    A request takes the most recently used idle connection to its origin, else opens a new
    one, else closes the idle connection unused the longest (whatever its origin) to make
    room, else waits for a connection to come back, up to the request's ``pool`` timeout.
    A connection goes back to the pool when its response is closed, if HTTP/1.1 let it stay
    open; idle connections are closed after ``keepalive_expiry`` seconds, or as soon as
    their server has closed them.
    """

    def __init__(
        self,
        *,
        max_connections: int,
        keepalive_expiry: float,
        ssl_context: ssl.SSLContext,
        network_backend: httpcore.AsyncNetworkBackend,
    ) -> None:
        """Open connections with ``network_backend``; TLS uses ``ssl_context``."""
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._ssl_context = ssl_context
        self._backend = network_backend
        self._open = 0
        self._idle: dict[Origin, list[Connection]] = {}
        # Every idle connection, oldest first (a dict keeps the order connections came back).
        self._idle_order: dict[Connection, None] = {}
        self._returned = asyncio.Event()
        self._closed = False

    @property
    def open_connections(self) -> int:
        """Connections open now (or being opened), busy and idle."""
        return self._open

    @property
    def idle_connections(self) -> int:
        """Open connections waiting for a request."""
        return len(self._idle_order)

    async def send(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` on a pooled connection; closing the response gives it back.

        Raises:
            httpx.PoolTimeout: no connection came free within the ``pool`` timeout.
            httpx.UnsupportedProtocol: the URL is not http or https.
            httpx.TransportError: connecting, sending or reading the head failed.
            AddressRefused, RemoteUnavailable: the network backend's guard refused the host.
        """
        url = request.url
        scheme = url.raw_scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"{url.scheme or 'a missing'} scheme is not http(s)")
        origin = (scheme, url.raw_host, url.port or _DEFAULT_PORTS[scheme])
        timeouts = request.extensions.get("timeout", {})
        connection = await self._checkout(origin, timeouts)
        try:
            head, body = await connection.send(request, timeouts)
        except BaseException:
            self._gone()  # send() closed it
            raise
        return httpx.Response(
            status_code=head.status_code,
            headers=head.headers,
            stream=_Body(body, lambda: self._checkin(connection)),
            extensions={"http_version": b"HTTP/" + head.http_version, "reason_phrase": head.reason},
        )

    async def aclose(self) -> None:
        """Close the idle connections now and the busy ones as their responses are closed.

        Requests sent afterwards still work, on connections closed after each answer.
        """
        self._closed = True
        while self._idle_order:
            await self._close(next(iter(self._idle_order)))

    async def _checkout(self, origin: Origin, timeouts: dict[str, float | None]) -> Connection:
        deadline = None
        wait = timeouts.get("pool")
        if wait is not None:
            deadline = asyncio.get_running_loop().time() + wait
        while True:
            await self._close_expired()
            idle = self._idle.get(origin)
            if idle:
                # The most recently used is the likeliest to be still open at the other end.
                connection = idle[-1]
                self._forget(connection)
                if connection.reusable:
                    return connection
                self._open -= 1  # the server closed it while it was idle
                await connection.aclose()
                continue
            if self._open < self._max_connections:
                self._open += 1
                try:
                    return await open_connection(
                        origin, self._backend, self._ssl_context, timeouts.get("connect")
                    )
                except BaseException:
                    self._gone()
                    raise
            if self._idle_order:
                await self._close(next(iter(self._idle_order)))
                continue
            await self._wait_for_return(deadline)

    async def _checkin(self, connection: Connection) -> None:
        """Take back a connection whose exchange is over: keep it if it can serve another."""
        if await connection.finish() and not self._closed:
            self._idle.setdefault(connection.origin, []).append(connection)
            self._idle_order[connection] = None
            self._wake()
        else:
            await connection.aclose()
            self._gone()

    def _gone(self) -> None:
        """A connection was closed: room for another."""
        self._open -= 1
        self._wake()

    def _wake(self) -> None:
        self._returned.set()
        self._returned = asyncio.Event()

    async def _close_expired(self) -> None:
        """Close idle connections unused for longer than the keep-alive expiry, oldest first."""
        expired = time.monotonic() - self._keepalive_expiry
        while self._idle_order:
            connection = next(iter(self._idle_order))
            if connection.idle_since > expired:
                return
            await self._close(connection)

    async def _close(self, connection: Connection) -> None:
        """Close an idle connection."""
        self._forget(connection)
        self._gone()
        await connection.aclose()

    def _forget(self, connection: Connection) -> None:
        """Take an idle connection out of the idle tables."""
        del self._idle_order[connection]
        idle = self._idle[connection.origin]
        idle.remove(connection)
        if not idle:
            del self._idle[connection.origin]

    async def _wait_for_return(self, deadline: float | None) -> None:
        try:
            async with asyncio.timeout_at(deadline):
                await self._returned.wait()
        except TimeoutError:
            raise httpx.PoolTimeout(
                f"all {self._max_connections} connections stayed busy"
            ) from None


class _Body(httpx.AsyncByteStream):
    """A response body that gives its connection back to the pool once closed.

    An iterator of its own rather than an async generator: each of those registers with the
    event loop when first iterated, and there is one per answer.
    """

    def __init__(
        self, chunks: AsyncGenerator[bytes, None], give_back: Callable[[], Awaitable[None]]
    ) -> None:
        self._chunks = chunks
        self._give_back: Callable[[], Awaitable[None]] | None = give_back

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self._chunks.__anext__()
        except StopAsyncIteration:
            raise
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        give_back, self._give_back = self._give_back, None
        if give_back is None:
            return
        try:
            with httpx_errors():
                await self._chunks.aclose()
        finally:
            await give_back()
