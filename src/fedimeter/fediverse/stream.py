"""TCP and TLS streams on asyncio's own transports, for httpcore's HTTP/1.1 connections.

httpcore reaches sockets through anyio by default, which puts a cancel scope around every
read and write and builds a dictionary of socket attributes for each one asked for: about
45 µs of CPU per request on loopback (docs/performance.md). These streams do the same job with an
``asyncio.Protocol`` and ``asyncio.timeout``: each read returns what has arrived (waiting only
when nothing has), each write hands the bytes to the transport and waits only while its buffer
is full. Errors and timeouts come out as httpcore's, as from its own backends.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import TYPE_CHECKING, Any

import httpcore

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["AsyncioBackend", "AsyncioStream"]

#: Bytes held unread before the socket is no longer read from (httpcore reads 64 KiB at a
#: time, so this only fills when the body is not being read).
_READ_LIMIT = 256 * 1024


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """Open TCP connections with the running loop's ``create_connection``."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Connect to ``host`` (an address: this does no DNS of its own worth relying on).

        Raises:
            httpcore.ConnectTimeout: not connected within ``timeout`` seconds.
            httpcore.ConnectError: the connection was refused or failed.
        """
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_connection(
                    _Protocol,
                    host,
                    port,
                    local_addr=(local_address, 0) if local_address else None,
                )
        except TimeoutError:
            raise httpcore.ConnectTimeout(
                f"connecting to {host} took longer than {timeout} s"
            ) from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return AsyncioStream(transport, protocol)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Refuse: servers are only reached over TCP.

        Raises:
            httpcore.ConnectError: always.
        """
        del timeout, socket_options
        raise httpcore.ConnectError(f"unix sockets are not used ({path})")

    async def sleep(self, seconds: float) -> None:
        """Sleep on the loop."""
        await asyncio.sleep(seconds)


class _Protocol(asyncio.Protocol):
    """Buffers what arrives and wakes the one reader or writer waiting for it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        # What arrived and was not read yet, as it arrived: most reads take one chunk whole,
        # without a copy.
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.eof = False
        self.lost: Exception | None = None
        self.closed = False
        self.reading_paused = False
        self.data_waiter: asyncio.Future[None] | None = None
        self.drain_waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # noqa: S101 - a stream transport
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > _READ_LIMIT and self.transport is not None:
            self.transport.pause_reading()
            self.reading_paused = True
        _wake(self.data_waiter)

    def eof_received(self) -> bool:
        self.eof = True
        _wake(self.data_waiter)
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.lost = exc
        self.eof = True
        _wake(self.data_waiter)
        _wake(self.drain_waiter)

    def pause_writing(self) -> None:
        self.drain_waiter = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        _wake(self.drain_waiter)
        self.drain_waiter = None


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection: reads and writes with per-call timeouts; TLS can be started on it."""

    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        """Wrap a connected transport and the ``_Protocol`` it feeds."""
        self._transport = transport
        self._protocol = protocol

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        """Up to ``max_bytes`` that arrived; ``b""`` at the end of the stream.

        Raises:
            httpcore.ReadTimeout: nothing arrived within ``timeout`` seconds.
            httpcore.ReadError: the connection broke.
        """
        protocol = self._protocol
        if not protocol.chunks and not protocol.eof:
            waiter = protocol.data_waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(timeout):
                    await waiter
            except TimeoutError:
                raise httpcore.ReadTimeout(f"nothing arrived within {timeout} s") from None
            finally:
                protocol.data_waiter = None
        if protocol.chunks:
            data = protocol.chunks.popleft()
            if len(data) > max_bytes:
                protocol.chunks.appendleft(data[max_bytes:])
                data = data[:max_bytes]
            protocol.buffered -= len(data)
            if protocol.reading_paused and protocol.buffered <= _READ_LIMIT // 2:
                protocol.reading_paused = False
                self._transport.resume_reading()
            return data
        if protocol.lost is not None:
            raise httpcore.ReadError(str(protocol.lost) or type(protocol.lost).__name__)
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Send ``buffer``, waiting while the transport's own buffer is full.

        Raises:
            httpcore.WriteTimeout: the peer did not take the bytes within ``timeout`` seconds.
            httpcore.WriteError: the connection is closed or broke.
        """
        if not buffer:
            return
        protocol = self._protocol
        if protocol.closed or self._transport.is_closing():
            raise httpcore.WriteError("the connection is closed")
        self._transport.write(buffer)
        waiter = protocol.drain_waiter
        if waiter is None:
            return
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(waiter)
        except TimeoutError:
            raise httpcore.WriteTimeout(f"the peer took nothing within {timeout} s") from None
        if protocol.closed:
            raise httpcore.WriteError(str(protocol.lost or "the connection closed"))

    async def aclose(self) -> None:
        """Close the connection (at once: unsent bytes are dropped)."""
        self._transport.abort()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's stream interface
    ) -> httpcore.AsyncNetworkStream:
        """Upgrade to TLS, checking the certificate against ``server_hostname``.

        Raises:
            httpcore.ConnectTimeout: the handshake took longer than ``timeout`` seconds.
            httpcore.ConnectError: the handshake failed (a bad certificate included).
        """
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(
                    self._transport, self._protocol, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError:
            self._transport.abort()
            raise httpcore.ConnectTimeout(f"TLS took longer than {timeout} s") from None
        except (OSError, ssl.SSLError, ConnectionError) as exc:
            self._transport.abort()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        if transport is None:  # pragma: no cover - only for a transport closing meanwhile
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        assert isinstance(transport, asyncio.Transport)  # noqa: S101 - start_tls's own kind
        return AsyncioStream(transport, self._protocol)

    def get_extra_info(self, info: str) -> Any:  # noqa: ANN401 - httpcore's interface
        """``ssl_object``, ``client_addr``, ``server_addr``, ``socket`` or ``is_readable``."""
        if info == "is_readable":
            # Something arrived, or the end: on an idle connection, the server has gone.
            protocol = self._protocol
            return bool(protocol.chunks) or protocol.eof
        name = {
            "ssl_object": "ssl_object",
            "client_addr": "sockname",
            "server_addr": "peername",
            "socket": "socket",
        }.get(info)
        return self._transport.get_extra_info(name) if name is not None else None
