"""Keep-alive HTTP/1.1 connections, reused per origin, at most ``max_connections`` open at once.

httpcore's ``AsyncConnectionPool`` re-examines every connection it holds each time a request
starts or ends, and for each idle one counts all of them again and polls its socket: with 64
connections spread over 50 hosts that bookkeeping cost more CPU than the requests themselves
(about 7 of the 9.4 CPU-seconds of a 10,000-account round, see docs/performance.md). This pool
keeps idle connections by origin, so finding one is a dictionary lookup and one check of that
connection alone. The connections themselves are httpcore's (``AsyncHTTPConnection``: HTTP/1.1
over h11, TLS with the URL's host name), dialled through whatever network backend it is given.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable
from typing import TYPE_CHECKING, TypeAlias

import httpcore

if TYPE_CHECKING:
    import ssl
    from collections.abc import AsyncIterator, Awaitable, Callable

__all__ = ["ConnectionPool"]

#: scheme, host, port: what a connection can serve (``httpcore.Origin`` is not hashable).
_Key: TypeAlias = tuple[bytes, bytes, int]


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
        self._idle: dict[_Key, list[httpcore.AsyncHTTPConnection]] = {}
        # Every idle connection with its origin and when it became idle, oldest first.
        self._idle_since: dict[httpcore.AsyncHTTPConnection, tuple[_Key, float]] = {}
        self._returned = asyncio.Event()
        self._closed = False

    @property
    def open_connections(self) -> int:
        """Connections open now, busy and idle."""
        return self._open

    @property
    def idle_connections(self) -> int:
        """Open connections waiting for a request."""
        return len(self._idle_since)

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        """Send ``request`` on a pooled connection; closing the response gives it back.

        Raises:
            httpcore.PoolTimeout: no connection came free within the ``pool`` timeout.
            httpcore.ConnectError, httpcore.TimeoutException, httpcore.ProtocolError, ...:
                connecting, sending or reading the head failed.
        """
        origin = request.url.origin
        key = (origin.scheme, origin.host, origin.port)
        wait = request.extensions.get("timeout", {}).get("pool")
        deadline = None if wait is None else asyncio.get_running_loop().time() + wait
        connection = await self._checkout(origin, key, deadline)
        try:
            response = await connection.handle_async_request(request)
        except BaseException:
            await self._checkin(connection, key)
            raise
        stream = response.stream
        if not isinstance(stream, AsyncIterable):  # pragma: no cover - the bodies are async
            await self._checkin(connection, key)
            raise TypeError("httpcore returned a synchronous stream")
        return httpcore.Response(
            status=response.status,
            headers=response.headers,
            content=_PooledBody(stream, lambda: self._checkin(connection, key)),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        """Close the idle connections now and the busy ones as their responses are closed.

        Requests sent afterwards still work, on connections closed after each answer.
        """
        self._closed = True
        while self._idle_since:
            await self._close(next(iter(self._idle_since)))

    async def _checkout(
        self, origin: httpcore.Origin, key: _Key, deadline: float | None
    ) -> httpcore.AsyncHTTPConnection:
        while True:
            await self._close_expired()
            idle = self._idle.get(key)
            if idle:
                # The most recently used is the likeliest to be still open at the other end.
                connection = idle[-1]
                self._forget(connection, key)
                if connection.has_expired():  # the server closed it while it was idle
                    self._open -= 1
                    await connection.aclose()
                    continue
                return connection
            if self._open < self._max_connections:
                self._open += 1
                return httpcore.AsyncHTTPConnection(
                    origin,
                    ssl_context=self._ssl_context,
                    keepalive_expiry=self._keepalive_expiry,
                    network_backend=self._backend,
                )
            if self._idle_since:
                await self._close(next(iter(self._idle_since)))
                continue
            await self._wait_for_return(deadline)

    async def _checkin(self, connection: httpcore.AsyncHTTPConnection, key: _Key) -> None:
        """Take back a connection whose request is over: keep it if it can serve another."""
        if self._closed or connection.is_closed() or not connection.is_idle():
            self._open -= 1
            await connection.aclose()
        else:
            self._idle.setdefault(key, []).append(connection)
            self._idle_since[connection] = (key, time.monotonic())
        self._returned.set()
        self._returned = asyncio.Event()

    async def _close_expired(self) -> None:
        """Close idle connections unused for longer than the keep-alive expiry, oldest first."""
        expired = time.monotonic() - self._keepalive_expiry
        while self._idle_since:
            connection, (_, since) = next(iter(self._idle_since.items()))
            if since > expired:
                return
            await self._close(connection)

    async def _close(self, connection: httpcore.AsyncHTTPConnection) -> None:
        """Close an idle connection."""
        self._forget(connection, self._idle_since[connection][0])
        self._open -= 1
        await connection.aclose()

    def _forget(self, connection: httpcore.AsyncHTTPConnection, key: _Key) -> None:
        """Take an idle connection out of the idle tables."""
        del self._idle_since[connection]
        idle = self._idle[key]
        idle.remove(connection)
        if not idle:
            del self._idle[key]

    async def _wait_for_return(self, deadline: float | None) -> None:
        try:
            async with asyncio.timeout_at(deadline):
                await self._returned.wait()
        except TimeoutError:
            raise httpcore.PoolTimeout(
                f"all {self._max_connections} connections stayed busy"
            ) from None


class _PooledBody:
    """A response body that gives its connection back to the pool once closed."""

    def __init__(
        self, stream: AsyncIterable[bytes], give_back: Callable[[], Awaitable[None]]
    ) -> None:
        self._stream = stream
        self._give_back: Callable[[], Awaitable[None]] | None = give_back

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._stream:
                yield chunk
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        give_back, self._give_back = self._give_back, None
        if give_back is None:
            return
        try:
            closer = getattr(self._stream, "aclose", None)
            if closer is not None:
                # Ends the HTTP/1.1 exchange: the connection is idle again, or closed.
                await closer()
        finally:
            await give_back()
