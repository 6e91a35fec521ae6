"""Keep-alive HTTP/1.1 connections, reused per origin, at most ``max_connections`` open at once.

httpcore's ``AsyncConnectionPool`` re-examines every connection it holds each time a request
starts or ends, and for each idle one counts all of them again and polls its socket: with 64
connections spread over 50 hosts that bookkeeping cost more CPU than sending the requests
(about 2.5 of the 9.4 CPU-seconds of a 10,000-account round, see docs/performance.md). This pool
keeps idle connections by origin, so finding one is a dictionary lookup and one check of that
connection alone, and an exchange reads its whole answer, so a connection comes back to the
pool as soon as its answer is complete, without the caller having to close anything.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from fedimeter.fediverse.connection import Answer, Connection, Origin

__all__ = ["ConnectionPool"]


class ConnectionPool:
    """Carry exchanges over reused connections; at most ``max_connections`` are open at once.

    An exchange takes the most recently used idle connection to its origin, else opens a new
    one, else closes the idle connection unused the longest (whatever its origin) to make
    room, else waits for a connection to come back, up to its ``wait_deadline``. A connection
    goes back to the pool when its answer is complete, if HTTP/1.1 lets it stay open; idle
    connections are closed after ``keepalive_expiry`` seconds, or as soon as their server has
    closed them.
    """

    def __init__(
        self,
        *,
        max_connections: int,
        keepalive_expiry: float,
        opener: Callable[[Origin, float | None], Awaitable[Connection]],
    ) -> None:
        """Open connections with ``opener(origin, timeout)``."""
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._opener = opener
        self._open = 0
        self._idle: dict[Origin, list[Connection]] = {}
        # Every idle connection, oldest first (a dict keeps the order connections came back).
        self._idle_order: dict[Connection, None] = {}
        self._returned = asyncio.Event()
        self._waiting = 0  # exchanges waiting for a connection to come back
        self._closed = False

    @property
    def open_connections(self) -> int:
        """Connections open now (or being opened), busy and idle."""
        return self._open

    @property
    def idle_connections(self) -> int:
        """Open connections waiting for a request."""
        return len(self._idle_order)

    async def fetch(
        self,
        origin: Origin,
        request: bytes,
        *,
        limit: int,
        error_limit: int,
        read_timeout: float | None,
        connect_timeout: float | None,
        wait_deadline: float | None,
        deadline: float | None,
    ) -> Answer:
        """Send ``request`` to ``origin`` on a pooled connection and return the whole answer.

        ``limit``, ``error_limit`` and ``read_timeout`` are the exchange's (see
        ``Connection.exchange``); ``wait_deadline`` bounds the wait for a free connection and
        the connecting, ``deadline`` the whole exchange (both on the event loop's clock;
        ``None``: no bound).

        Raises:
            httpx.PoolTimeout: no connection came free before ``wait_deadline``.
            httpx.TransportError: connecting, sending or reading failed.
            DeadlinePassed, BodyTooLarge: see ``Connection.exchange``.
            AddressRefused, RemoteUnavailable: the opener's guard refused the host.
        """
        connection = self._idle_connection(origin)
        if connection is None:
            connection = await self._checkout(origin, connect_timeout, wait_deadline)
        try:
            answer = await connection.exchange(
                request,
                limit=limit,
                error_limit=error_limit,
                read_timeout=read_timeout,
                deadline=deadline,
            )
        except BaseException:
            connection.close()
            self._gone()
            raise
        if connection.reusable and not self._closed:
            self._idle.setdefault(origin, []).append(connection)
            self._idle_order[connection] = None
            self._wake()
        else:
            connection.close()
            self._gone()
        return answer

    async def aclose(self) -> None:
        """Close the idle connections now and the busy ones as their answers complete.

        Exchanges started afterwards still work, on connections closed after each answer.
        """
        self._closed = True
        while self._idle_order:
            self._close(next(iter(self._idle_order)))

    def _idle_connection(self, origin: Origin) -> Connection | None:
        """Take an idle connection to ``origin`` that is still fit, if there is one."""
        self._close_expired()
        idle = self._idle.get(origin)
        while idle:
            # The most recently used is the likeliest to be still open at the other end.
            connection = idle[-1]
            self._forget(connection)
            if connection.reusable:
                return connection
            self._close(connection, forgotten=True)  # the server closed it while it was idle
            idle = self._idle.get(origin)
        return None

    async def _checkout(
        self, origin: Origin, connect_timeout: float | None, wait_deadline: float | None
    ) -> Connection:
        loop = asyncio.get_running_loop()
        while True:
            connection = self._idle_connection(origin)
            if connection is not None:
                return connection
            if self._open < self._max_connections:
                self._open += 1
                timeout = connect_timeout
                if wait_deadline is not None:
                    left = max(0.0, wait_deadline - loop.time())
                    timeout = left if timeout is None else min(timeout, left)
                try:
                    return await self._opener(origin, timeout)
                except BaseException:
                    self._gone()
                    raise
            if self._idle_order:
                self._close(next(iter(self._idle_order)))
                continue
            await self._wait_for_return(wait_deadline)

    def _gone(self) -> None:
        """A connection was closed: room for another."""
        self._open -= 1
        self._wake()

    def _wake(self) -> None:
        if self._waiting:
            self._returned.set()
            self._returned = asyncio.Event()

    def _close_expired(self) -> None:
        """Close idle connections unused for longer than the keep-alive expiry, oldest first."""
        if not self._idle_order:
            return
        expired = time.monotonic() - self._keepalive_expiry
        while self._idle_order:
            connection = next(iter(self._idle_order))
            if connection.idle_since > expired:
                return
            self._close(connection)

    def _close(self, connection: Connection, *, forgotten: bool = False) -> None:
        """Close an idle connection."""
        if not forgotten:
            self._forget(connection)
        connection.close()
        self._gone()

    def _forget(self, connection: Connection) -> None:
        """Take an idle connection out of the idle tables."""
        del self._idle_order[connection]
        idle = self._idle[connection.origin]
        idle.remove(connection)
        if not idle:
            del self._idle[connection.origin]

    async def _wait_for_return(self, deadline: float | None) -> None:
        self._waiting += 1
        try:
            async with asyncio.timeout_at(deadline):
                await self._returned.wait()
        except TimeoutError:
            raise httpx.PoolTimeout(
                f"all {self._max_connections} connections stayed busy"
            ) from None
        finally:
            self._waiting -= 1
