"""One HTTP/1.1 connection: h11 over a network stream, one exchange at a time.

h11 does the protocol (framing, header validation, keep-alive rules); this module moves its
bytes over an ``httpcore.AsyncNetworkStream`` (the guarded backend's: see ``transport``) and
turns every failure into an ``httpx`` error. It is what httpcore's ``AsyncHTTPConnection``
does, without the locks, cancel scopes and tracing hooks that a connection owned by exactly
one request at a time does not need, and which cost about as much CPU as h11 itself
(docs/performance.md).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final

import h11
import httpcore
import httpx

if TYPE_CHECKING:
    import ssl
    from collections.abc import AsyncGenerator, Iterator

__all__ = ["Connection", "Origin", "httpx_errors", "open_connection"]

#: scheme, host, port of a URL: what a connection can serve.
Origin = tuple[bytes, bytes, int]

#: Bytes asked of the stream at a time.
_READ_SIZE: Final = 64 * 1024
#: Largest response head accepted (status line and headers).
_MAX_HEAD: Final = 100 * 1024

# Most specific first: the first match decides.
_ERROR_MAP: Final[tuple[tuple[type[Exception], type[httpx.TransportError]], ...]] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (h11.RemoteProtocolError, httpx.RemoteProtocolError),
    (h11.LocalProtocolError, httpx.LocalProtocolError),
)


@contextmanager
def httpx_errors() -> Iterator[None]:
    """Raise httpcore's and h11's errors as the matching ``httpx`` errors."""
    try:
        yield
    except Exception as exc:
        for source, target in _ERROR_MAP:
            if isinstance(exc, source):
                raise target(str(exc) or type(exc).__name__) from exc
        raise


async def open_connection(
    origin: Origin,
    backend: httpcore.AsyncNetworkBackend,
    ssl_context: ssl.SSLContext,
    timeout: float | None,  # noqa: ASYNC109 - passed on to the backend, which applies it
) -> Connection:
    """Connect to ``origin`` through ``backend``, with TLS for https (SNI: the host name).

    Raises:
        httpx.ConnectError, httpx.ConnectTimeout: connecting or the TLS handshake failed.
        AddressRefused, RemoteUnavailable: the backend's guard refused the host.
    """
    scheme, host, port = origin
    name = host.decode("ascii")
    with httpx_errors():
        stream = await backend.connect_tcp(name, port, timeout=timeout)
        if scheme == b"https":
            try:
                stream = await stream.start_tls(ssl_context, server_hostname=name, timeout=timeout)
            except BaseException:
                await stream.aclose()
                raise
    return Connection(origin, stream)


class Connection:
    """An open connection that sends one request at a time and keeps alive when it may."""

    def __init__(self, origin: Origin, stream: httpcore.AsyncNetworkStream) -> None:
        """Speak HTTP/1.1 to ``origin`` over ``stream``."""
        self.origin = origin
        self._stream = stream
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_HEAD)
        self._busy = False
        self._closed = False
        #: When the last exchange ended (``time.monotonic()``).
        self.idle_since = time.monotonic()

    @property
    def reusable(self) -> bool:
        """Whether the connection is idle and open, as far as we can tell without sending.

        Anything arriving while idle (the end of the stream, or a stray ``408``) means the
        server is closing it.
        """
        return (
            not self._busy and not self._closed and not self._stream.get_extra_info("is_readable")
        )

    async def send(
        self, request: httpx.Request, timeouts: dict[str, float | None]
    ) -> tuple[h11.Response, AsyncGenerator[bytes, None]]:
        """Send ``request``; return the answer's head and an iterator over its body.

        The connection is busy until the body has been read to its end, or ``finish()``.

        Raises:
            httpx.TransportError: sending or reading the head failed (the connection is
                closed then).
        """
        if self._busy or self._closed:  # pragma: no cover - the pool never does this
            raise RuntimeError("the connection is not free")
        self._busy = True
        try:
            with httpx_errors():
                await self._send_request(request, timeouts.get("write"))
                head = await self._receive_head(timeouts.get("read"))
        except BaseException:
            await self.aclose()
            raise
        return head, self._body(timeouts.get("read"))

    async def finish(self) -> bool:
        """End the exchange: the connection stays open if it was complete and may be reused.

        Returns:
            Whether the connection is open and free for another request.
        """
        h11_state = self._h11
        if (
            not self._closed
            and h11_state.our_state is h11.DONE
            and h11_state.their_state is h11.DONE
        ):
            h11_state.start_next_cycle()
            self._busy = False
            self.idle_since = time.monotonic()
            return True
        await self.aclose()
        return False

    async def aclose(self) -> None:
        """Close the connection."""
        if not self._closed:
            self._closed = True
            await self._stream.aclose()

    async def _send_request(self, request: httpx.Request, timeout: float | None) -> None:  # noqa: ASYNC109
        h11_state = self._h11
        data = h11_state.send(
            h11.Request(
                method=request.method, target=request.url.raw_path, headers=request.headers.raw
            )
        )
        stream = request.stream
        if not isinstance(stream, httpx.AsyncByteStream):  # pragma: no cover - httpx's own
            raise TypeError("the transport needs an async request body")
        try:
            if isinstance(stream, httpx.ByteStream):
                # A body given as bytes (or none): everything in one write.
                body = b"".join([chunk async for chunk in stream])
                if body:
                    data = (data or b"") + (h11_state.send(h11.Data(data=body)) or b"")
                data = (data or b"") + (h11_state.send(h11.EndOfMessage()) or b"")
                await self._stream.write(data, timeout=timeout)
                return
            await self._stream.write(data or b"", timeout=timeout)
            async for chunk in stream:
                await self._stream.write(h11_state.send(h11.Data(data=chunk)) or b"", timeout)
            await self._stream.write(h11_state.send(h11.EndOfMessage()) or b"", timeout=timeout)
        except httpcore.WriteError:
            # The server may have stopped reading to answer (a 413, say): read what it said.
            pass

    async def _receive_head(self, timeout: float | None) -> h11.Response:  # noqa: ASYNC109
        while True:
            event = await self._next_event(timeout)
            if isinstance(event, h11.Response):
                return event
            # 1xx answers (100 Continue, 103 Early Hints) come before the real one.

    async def _body(self, timeout: float | None) -> AsyncGenerator[bytes, None]:  # noqa: ASYNC109
        with httpx_errors():
            while True:
                event = await self._next_event(timeout)
                if isinstance(event, h11.Data):
                    yield bytes(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    return

    async def _next_event(self, timeout: float | None) -> h11.Event:  # noqa: ASYNC109
        h11_state = self._h11
        while True:
            event = h11_state.next_event()
            if event is h11.NEED_DATA:
                data = await self._stream.read(_READ_SIZE, timeout=timeout)
                if not data and h11_state.their_state is h11.SEND_RESPONSE:
                    raise httpx.RemoteProtocolError(
                        "the server closed the connection without sending an answer"
                    )
                h11_state.receive_data(data)
            elif event is h11.PAUSED:  # pragma: no cover - only after a 101 or CONNECT
                raise httpx.RemoteProtocolError("the server switched protocols")
            else:
                assert isinstance(event, h11.Event)  # noqa: S101 - NEED_DATA and PAUSED are out
                return event
