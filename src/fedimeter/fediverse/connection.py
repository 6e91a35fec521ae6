"""One HTTP/1.1 connection: llhttp (by httptools) over a network stream, one exchange at a time.

httptools parses the answers (framing by Content-Length, chunks or the end of the connection;
keep-alive rules; strict syntax) in C; this module writes the requests, moves bytes over an
``httpcore.AsyncNetworkStream`` (the guarded backend's: see ``transport``) and turns every failure
into an ``httpx`` error. It replaced h11, a pure-Python state machine that cost about 100 us of
CPU per answer when hot and over 300 us when the answer woke an idle process, more than half of
the HTTP path's CPU in a collection round (docs/performance.md).

What a server controls is bounded: the head (status line and headers) to ``_MAX_HEAD`` bytes,
the body by the caller reading it (``fediverse.body`` caps it), the time by the read timeouts.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import httpcore
import httptools
import httpx

if TYPE_CHECKING:
    import ssl
    from collections.abc import AsyncGenerator, Iterator

__all__ = ["Connection", "Head", "Origin", "httpx_errors", "open_connection"]

#: scheme, host, port of a URL: what a connection can serve.
Origin = tuple[bytes, bytes, int]

#: Bytes asked of the stream at a time.
_READ_SIZE: Final = 64 * 1024
#: Largest response head accepted (status line and headers).
_MAX_HEAD: Final = 100 * 1024
#: Characters that may not appear in a request line or header we send.
_FORBIDDEN_IN_HEAD: Final = (b"\r", b"\n", b"\0")
_NO_BODY_STATUSES: Final = frozenset({204, 304})

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
    (httptools.HttpParserError, httpx.RemoteProtocolError),
)


@contextmanager
def httpx_errors() -> Iterator[None]:
    """Raise httpcore's and httptools' errors as the matching ``httpx`` errors."""
    try:
        yield
    except Exception as exc:
        for source, target in _ERROR_MAP:
            if isinstance(exc, source):
                raise target(_message(exc)) from exc
        raise


def _message(exc: Exception) -> str:
    if isinstance(exc, httptools.HttpParserError):
        # A callback's own error (the head too large) says more than the parser's wrapper.
        cause = exc.__context__
        if isinstance(exc, httptools.HttpParserCallbackError) and cause is not None:
            return str(cause)
        return f"the answer is not valid HTTP/1.1 ({exc})"
    return str(exc) or type(exc).__name__


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


@dataclass(frozen=True, slots=True)
class Head:
    """The status line and headers of an answer."""

    status_code: int
    #: Names and values as they came.
    headers: list[tuple[bytes, bytes]]
    #: ``b"1.1"`` or ``b"1.0"``.
    http_version: bytes
    reason: bytes


class _HeadTooLarge(httpx.RemoteProtocolError):
    """The answer's head passed ``_MAX_HEAD``."""

    def __init__(self) -> None:
        super().__init__(f"the answer's head is larger than {_MAX_HEAD:,} bytes")


class _AfterTheAnswer(Exception):
    """Bytes came after the complete answer (stops the parser)."""


class _Answer:
    """httptools' callbacks for one answer: what has arrived of it so far."""

    __slots__ = (
        "body",
        "complete",
        "extra",
        "head_bytes",
        "headers",
        "informational",
        "keep_alive",
        "parser",
        "reason",
        "status",
    )

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.headers: list[tuple[bytes, bytes]] = []
        self.reason = b""
        self.status = 0
        self.head_bytes = 0
        self.body: list[bytes] = []
        self.complete = False
        self.informational = False
        #: Whether the server lets the connection serve another request (read at the end:
        #: llhttp forgets it once it starts waiting for the next message).
        self.keep_alive = False
        #: Bytes came after the answer: the connection cannot be trusted for another.
        self.extra = False

    def on_message_begin(self) -> None:
        if self.complete:
            raise _AfterTheAnswer
        # After a 1xx (100 Continue, 103 Early Hints) the real answer starts afresh.
        self.headers, self.reason, self.body = [], b"", []
        self.status, self.head_bytes, self.informational = 0, 0, False

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_bytes += len(name) + len(value) + 4
        if self.head_bytes > _MAX_HEAD:
            raise _HeadTooLarge
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.informational = 100 <= self.status < 200  # noqa: PLR2004 - the 1xx range

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.informational:
            return  # the answer proper follows
        self.keep_alive = self.parser.should_keep_alive()
        self.complete = True

    @property
    def has_head(self) -> bool:
        return self.status != 0 and not self.informational

    def feed(self, data: bytes) -> None:
        """Parse ``data``; what comes after a complete answer only marks the connection."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if not self.complete:
                raise
            # Garbage, or an answer nobody asked for: not a connection to send on again.
            self.extra = True

    def take_body(self) -> list[bytes]:
        chunks, self.body = self.body, []
        return chunks

    def ends_with_the_connection(self) -> bool:
        """Whether the body runs until the server closes (no length, not chunked)."""
        if self.status in _NO_BODY_STATUSES:
            return False
        for name, value in self.headers:
            lowered = name.lower()
            if lowered == b"content-length":
                return False
            if lowered == b"transfer-encoding" and value.strip().lower().endswith(b"chunked"):
                return False
        return True


class Connection:
    """An open connection that sends one request at a time and keeps alive when it may."""

    def __init__(self, origin: Origin, stream: httpcore.AsyncNetworkStream) -> None:
        """Speak HTTP/1.1 to ``origin`` over ``stream``."""
        self.origin = origin
        self._stream = stream
        self._answer: _Answer | None = None
        self._sent = False
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
    ) -> tuple[Head, AsyncGenerator[bytes, None]]:
        """Send ``request``; return the answer's head and an iterator over its body.

        The connection is busy until the body has been read to its end, or ``finish()``.

        Raises:
            httpx.TransportError: sending or reading the head failed (the connection is
                closed then).
        """
        if self._busy or self._closed:  # pragma: no cover - the pool never does this
            raise RuntimeError("the connection is not free")
        self._busy = True
        self._sent = False
        answer = self._answer = _Answer()
        try:
            with httpx_errors():
                await self._send_request(request, timeouts.get("write"))
                await self._receive_head(answer, timeouts.get("read"))
        except BaseException:
            await self.aclose()
            raise
        head = Head(
            answer.status,
            answer.headers,
            answer.parser.get_http_version().encode("ascii"),
            answer.reason,
        )
        return head, self._body(answer, timeouts.get("read"))

    async def finish(self) -> bool:
        """End the exchange: the connection stays open if it was complete and may be reused.

        Returns:
            Whether the connection is open and free for another request.
        """
        answer = self._answer
        if (
            not self._closed
            and self._sent
            and answer is not None
            and answer.complete
            and not answer.extra
            and answer.keep_alive
        ):
            self._answer = None
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
        stream = request.stream
        if not isinstance(stream, httpx.AsyncByteStream):  # pragma: no cover - httpx's own
            raise TypeError("the transport needs an async request body")
        head = _request_head(request)
        chunked = any(
            name.lower() == b"transfer-encoding" and value.strip().lower() == b"chunked"
            for name, value in request.headers.raw
        )
        try:
            if isinstance(stream, httpx.ByteStream):
                # A body given as bytes (or none): everything in one write.
                body = b"".join([chunk async for chunk in stream])
                data = head + _framed(body, chunked=chunked)
                if chunked:
                    data += b"0\r\n\r\n"
                await self._stream.write(data, timeout=timeout)
            else:
                await self._stream.write(head, timeout=timeout)
                async for chunk in stream:
                    if chunk:
                        await self._stream.write(_framed(chunk, chunked=chunked), timeout=timeout)
                if chunked:
                    await self._stream.write(b"0\r\n\r\n", timeout=timeout)
        except httpcore.WriteError:
            # The server may have stopped reading to answer (a 413, say): read what it said,
            # then close the connection.
            return
        self._sent = True

    async def _receive_head(self, answer: _Answer, timeout: float | None) -> None:  # noqa: ASYNC109
        fed = 0
        while not answer.has_head:
            data = await self._stream.read(_READ_SIZE, timeout=timeout)
            if not data:
                raise httpx.RemoteProtocolError(
                    "the server closed the connection without sending an answer"
                    if fed == 0
                    else "the server closed the connection in the middle of the answer's head"
                )
            fed += len(data)
            answer.feed(data)
            if not answer.has_head and fed > _MAX_HEAD:
                raise _HeadTooLarge

    async def _body(self, answer: _Answer, timeout: float | None) -> AsyncGenerator[bytes, None]:  # noqa: ASYNC109
        with httpx_errors():
            while True:
                for chunk in answer.take_body():
                    yield chunk
                if answer.complete:
                    return
                data = await self._stream.read(_READ_SIZE, timeout=timeout)
                if not data:
                    if answer.ends_with_the_connection():
                        # The close was the end. keep_alive stays False (llhttp never saw
                        # the message complete), so the connection is not reused.
                        answer.complete = True
                        continue
                    raise httpx.RemoteProtocolError(
                        "the server closed the connection before the end of the answer"
                    )
                answer.feed(data)


def _request_head(request: httpx.Request) -> bytes:
    """The request line and headers, refusing line breaks or NULs in any of them."""
    url = request.url
    lines = [request.method.encode("ascii") + b" " + url.raw_path + b" HTTP/1.1"]
    lines += [name + b": " + value for name, value in request.headers.raw]
    # Checked on the lines joined without separators: three scans of one string in C.
    unseparated = b"".join(lines)
    if any(char in unseparated for char in _FORBIDDEN_IN_HEAD):
        raise httpx.LocalProtocolError("a request line or header holds a line break or NUL")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _framed(body: bytes, *, chunked: bool) -> bytes:
    if not chunked or not body:
        return body
    return f"{len(body):x}\r\n".encode("ascii") + body + b"\r\n"
