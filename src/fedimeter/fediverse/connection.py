"""One HTTP/1.1 connection: llhttp (by httptools) fed straight by an asyncio protocol.

A ``Connection`` is the asyncio protocol of its socket and the callbacks of its httptools parser
at once: each chunk the socket delivers goes into the parser in the same call, the parser's
callbacks collect the answer, and the future of the exchange is resolved when the answer is
complete, body included. One exchange costs one future, one timer and no task, no stream, no
async generator: the CPU a collection round spends per request is close to the least any
Python client can spend (``python bench/collect.py --floor``, docs/performance.md). It replaced
an ``httpcore`` network stream read through ``asyncio.timeout`` per read, an async generator per
body and httpx's request and response objects, which together cost about 250 us per answer that
woke an idle process.

What a server controls is bounded:
- the head (status line and headers) to ``MAX_HEAD`` bytes;
- the body to the exchange's limit: a 2xx body over it fails with ``BodyTooLarge`` (announced
  or as it arrives); any other answer's body over its smaller limit is not read further
  (``Answer.body`` is ``None``) and the connection closed, since the status says enough;
- the time: ``read_timeout`` seconds at most without a byte arriving, and the exchange's
  ``deadline`` (the event loop's clock) for the whole answer, whatever pace it comes at.

Everything that goes wrong comes out as an ``httpx`` error (``httpx.ReadTimeout``,
``httpx.RemoteProtocolError``...), ``DeadlinePassed`` or ``BodyTooLarge``; the connection is
closed then and never used again.
"""

from __future__ import annotations

import asyncio
import math
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias, cast

import httptools
import httpx

__all__ = [
    "MAX_HEAD",
    "Answer",
    "BodyTooLarge",
    "Connection",
    "Connector",
    "DeadlinePassed",
    "Origin",
    "connect_socket",
    "header_lines",
    "request_head",
]

#: scheme (``"http"`` or ``"https"``), host, port of a URL: what a connection can serve.
Origin = tuple[str, str, int]

#: ``connector(protocol_factory, address, port, ssl_context, server_hostname)`` opens a
#: connection to ``address`` (an IP address) whose protocol ``protocol_factory`` makes, with TLS
#: when ``ssl_context`` is given (certificate and SNI for ``server_hostname``).
Connector: TypeAlias = Callable[
    [Callable[[], asyncio.Protocol], str, int, ssl.SSLContext | None, str], Awaitable[object]
]

#: Largest answer head accepted (status line and headers).
MAX_HEAD: Final = 100 * 1024
#: Characters that may not appear in a request line or header we send.
_FORBIDDEN_IN_HEAD: Final = (b"\r", b"\n", b"\0")
_NO_BODY_STATUSES: Final = frozenset({204, 304})


class DeadlinePassed(httpx.TimeoutException):
    """The answer was not complete by the exchange's deadline (a slow drip, say)."""


class BodyTooLarge(Exception):
    """A 2xx answer's body is (or announces to be) larger than the exchange's limit."""

    def __init__(self, limit: int, announced: int | None) -> None:
        """``announced``: the Content-Length, when that is what gave it away."""
        super().__init__(f"the answer is larger than {limit:,} bytes")
        self.limit = limit
        self.announced = announced


class _HeadTooLarge(httpx.RemoteProtocolError):
    def __init__(self) -> None:
        super().__init__(f"the answer's head is larger than {MAX_HEAD:,} bytes")


class _Unasked(Exception):
    """A message began while no exchange was waiting (stops the parser)."""


class _Enough(Exception):
    """A non-2xx body passed its limit: the status is the answer, the rest is not read."""


@dataclass(slots=True)
class Answer:
    """A complete answer."""

    status: int
    #: ``"1.1"`` or ``"1.0"``.
    http_version: str
    reason: bytes
    #: Names and values as they came.
    raw_headers: list[tuple[bytes, bytes]]
    #: Lower-case names to values, repeated names joined with ``", "``: built once, as an
    #: answer is looked up some ten times (rate limit, type, length, encoding, location).
    headers: dict[str, str]
    #: The body as it came over the wire (still compressed if it was); ``None`` when a non-2xx
    #: body was larger than its limit and was not kept.
    body: bytes | None


async def connect_socket(
    protocol_factory: Callable[[], asyncio.Protocol],
    address: str,
    port: int,
    ssl_context: ssl.SSLContext | None,
    server_hostname: str,
) -> object:
    """Open a TCP connection with the running loop, TLS checked against ``server_hostname``."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(
        protocol_factory,
        address,
        port,
        ssl=ssl_context,
        server_hostname=server_hostname if ssl_context is not None else None,
    )
    return transport


class Connection(asyncio.Protocol):
    """An open connection that carries one exchange at a time and keeps alive when it may."""

    def __init__(self, origin: Origin) -> None:
        """Speak HTTP/1.1 to ``origin``; ``connection_made`` gives it its transport."""
        self.origin = origin
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._closed = False
        self._broken = False  # unfit for another exchange, though perhaps still open
        #: When the last exchange ended (``time.monotonic()``).
        self.idle_since = time.monotonic()
        # The exchange in progress, if any.
        self._waiter: asyncio.Future[Answer] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = math.inf
        self._read_timeout = math.inf
        self._last_data = 0.0
        self._received = 0
        self._head_bytes = 0  # of the head being parsed, counted header by header
        self._limit = 0
        self._error_limit = 0
        # The answer being parsed.
        self._status = 0
        self._reason = b""
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self._headers: dict[str, str] = {}  # by lower-case name, once the head is whole
        self._body: list[bytes] | None = []
        self._body_size = 0
        self._body_limit = 0
        self._informational = False
        self._in_head = False
        self._complete = False
        self._keep_alive = False

    def itself(self) -> Connection:
        """The connection: the protocol factory that opening a socket for it needs."""
        return self

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport (a stream transport: it was opened by ``create_connection``).

        Not checked with ``isinstance``: uvloop's transports (uvicorn runs the server on
        uvloop when it is installed) do not derive from ``asyncio.Transport``.
        """
        self._transport = cast("asyncio.Transport", transport)

    def data_received(self, data: bytes) -> None:
        """Feed what arrived to the parser; anything arriving between exchanges breaks it."""
        waiter = self._waiter
        if waiter is None:
            # The end of the keep-alive, a stray 408, or garbage: not a connection to reuse.
            self._broken = True
            return
        self._last_data = self._loop.time()
        self._received += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(httpx.RemoteProtocolError("the server switched protocols unasked"))
            return
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _Enough):
                self._complete = True
                self._keep_alive = False
            elif self._complete:
                # Bytes after the answer (garbage, or an answer nobody asked for): the answer
                # stands, the connection does not.
                self._broken = True
            else:
                self._fail(_parser_error(exc))
                return
        if self._complete:
            self._finish()
        elif self._in_head and self._received > MAX_HEAD:
            self._fail(_HeadTooLarge())

    def eof_received(self) -> bool:
        """The server closed its side: the end of a body that runs until the close, or a break."""
        self._broken = True
        if self._waiter is not None:
            if self._status and not self._informational and self._ends_with_the_connection():
                self._complete = True
                self._keep_alive = False
                self._finish()
            elif self._received == 0:
                self._fail(
                    httpx.RemoteProtocolError(
                        "the server closed the connection without sending an answer"
                    )
                )
            elif self._in_head or self._status == 0:
                self._fail(
                    httpx.RemoteProtocolError(
                        "the server closed the connection in the middle of the answer's head"
                    )
                )
            else:
                self._fail(
                    httpx.RemoteProtocolError(
                        "the server closed the connection before the end of the answer"
                    )
                )
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection is gone: an exchange in progress fails."""
        self._closed = True
        self._broken = True
        if self._waiter is not None:
            if exc is None:
                self.eof_received()
            else:
                self._fail(httpx.ReadError(str(exc) or type(exc).__name__))

    # -- httptools' callbacks --------------------------------------------------------------

    def on_message_begin(self) -> None:
        """A new answer (or the real one after a 1xx)."""
        if self._complete or self._waiter is None:
            raise _Unasked
        self._status = 0
        self._reason = b""
        self._raw_headers = []
        self._head_bytes = 0
        self._informational = False
        self._in_head = True

    def on_status(self, reason: bytes) -> None:
        """Part of the reason phrase."""
        self._reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        """One header."""
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes > MAX_HEAD:
            raise _HeadTooLarge
        self._raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        """The head is whole: decide where the body goes and how much of it is allowed."""
        self._in_head = False
        status = self._status = self._parser.get_status_code()
        self._informational = 100 <= status < 200  # noqa: PLR2004 - the 1xx range
        if self._informational:
            return
        ok = 200 <= status < 300  # noqa: PLR2004 - the 2xx range
        self._headers = _by_name(self._raw_headers)
        self._body_limit = self._limit if ok else self._error_limit
        self._body = []
        self._body_size = 0
        length = self._headers.get("content-length", "").strip()
        announced = int(length) if length.isascii() and length.isdigit() else None
        if announced is not None and announced > self._body_limit:
            if ok:
                raise BodyTooLarge(self._limit, announced)
            self._body = None
            raise _Enough

    def on_body(self, body: bytes) -> None:
        """Part of the body (never called once the body is dropped: ``_Enough`` stops it)."""
        self._body_size += len(body)
        if self._body_size > self._body_limit:
            if 200 <= self._status < 300:  # noqa: PLR2004 - the 2xx range
                raise BodyTooLarge(self._limit, None)
            self._body = None
            raise _Enough
        self._body.append(body)  # type: ignore[union-attr]

    def on_message_complete(self) -> None:
        """The answer is whole (unless it was a 1xx: the real one follows)."""
        if self._informational:
            return
        self._keep_alive = self._parser.should_keep_alive()
        self._complete = True

    # -- use -------------------------------------------------------------------------------

    @property
    def reusable(self) -> bool:
        """Whether the connection is idle, open and fit for another exchange."""
        transport = self._transport
        return (
            self._waiter is None
            and not self._broken
            and not self._closed
            and transport is not None
            and not transport.is_closing()
        )

    def exchange(
        self,
        request: bytes,
        *,
        limit: int,
        error_limit: int,
        read_timeout: float | None,
        deadline: float | None,
    ) -> asyncio.Future[Answer]:
        """Send ``request`` (head and body, ready to go) and return the future of its answer.

        ``limit`` bounds a 2xx body, ``error_limit`` any other; ``deadline`` is on the event
        loop's clock (``None``: no timeout, no deadline). The connection is busy until the
        future is done; whoever stops waiting for it must ``close()`` the connection.
        """
        transport = self._transport
        if self._waiter is not None or transport is None or not self.reusable:
            raise RuntimeError("the connection is not free")  # the pool never does this
        loop = self._loop
        waiter = self._waiter = loop.create_future()
        self._limit = limit
        self._error_limit = error_limit
        self._read_timeout = math.inf if read_timeout is None else read_timeout
        self._deadline = math.inf if deadline is None else deadline
        self._status = 0
        self._received = 0
        self._complete = False
        self._keep_alive = False
        self._in_head = True
        now = self._last_data = loop.time()
        when = min(self._deadline, now + self._read_timeout)
        if when != math.inf:
            self._timer = loop.call_at(when, self._check_time)
        transport.write(request)
        return waiter

    def close(self) -> None:
        """Close the connection now (anything unsent is dropped), abandoning any exchange.

        The future of an abandoned exchange is left as it is: its awaiter has gone (cancelled)
        or is the one closing.
        """
        if self._waiter is not None:
            self._end_exchange()
        self._broken = True
        if not self._closed:
            self._closed = True
            if self._transport is not None:
                self._transport.abort()

    # -- inside ----------------------------------------------------------------------------

    def _finish(self) -> None:
        """Resolve the exchange with the complete answer."""
        waiter = self._waiter
        if waiter is None:  # pragma: no cover - only called with an exchange in progress
            return
        body = self._body
        answer = Answer(
            self._status,
            self._parser.get_http_version(),
            self._reason,
            self._raw_headers,
            self._headers,
            None if body is None else b"".join(body),
        )
        if body is None or not self._keep_alive:
            self._broken = True
        self._end_exchange()
        if not waiter.done():
            waiter.set_result(answer)
        if self._broken:
            self.close()

    def _fail(self, error: BaseException) -> None:
        """End the exchange with ``error`` and close the connection."""
        waiter = self._waiter
        self.close()
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    def _end_exchange(self) -> None:
        self._waiter = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._body = []
        self._raw_headers = []
        self._headers = {}
        self._complete = False
        self.idle_since = time.monotonic()

    def _check_time(self) -> None:
        """The timer: enforce the deadline and the read timeout, or look again later."""
        self._timer = None
        if self._waiter is None:  # pragma: no cover - the timer is cancelled with the exchange
            return
        now = self._loop.time()
        if now >= self._deadline:
            self._fail(DeadlinePassed("the answer was not whole by the request's deadline"))
            return
        quiet_until = self._last_data + self._read_timeout
        if now >= quiet_until:
            transport = self._transport
            if transport is not None and transport.get_write_buffer_size() > 0:
                self._fail(
                    httpx.WriteTimeout(f"the server took no bytes for {self._read_timeout:g} s")
                )
            else:
                self._fail(httpx.ReadTimeout(f"nothing arrived for {self._read_timeout:g} s"))
            return
        self._timer = self._loop.call_at(min(self._deadline, quiet_until), self._check_time)

    def _ends_with_the_connection(self) -> bool:
        """Whether the body runs until the server closes (no length, not chunked)."""
        if self._status in _NO_BODY_STATUSES or "content-length" in self._headers:
            return False
        encoding = self._headers.get("transfer-encoding", "")
        return not encoding.strip().lower().endswith("chunked")


def _by_name(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for raw_name, raw_value in raw:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        found[name] = f"{found[name]}, {value}" if name in found else value
    return found


def _parser_error(exc: httptools.HttpParserError) -> BaseException:
    """The error to report for what stopped the parser."""
    if isinstance(exc, httptools.HttpParserCallbackError):
        cause = exc.__context__
        if isinstance(cause, BodyTooLarge | httpx.RemoteProtocolError):
            return cause
        if cause is not None:  # pragma: no cover - every callback error is one of ours
            return httpx.RemoteProtocolError(str(cause))
    return httpx.RemoteProtocolError(f"the answer is not valid HTTP/1.1 ({exc})")


def request_head(method: bytes, target: bytes, headers: Sequence[tuple[bytes, bytes]]) -> bytes:
    """The request line and headers, refusing line breaks or NULs in any of them.

    Raises:
        httpx.LocalProtocolError: a line break or NUL in the target, a name or a value.
    """
    _refuse_line_breaks([method, target])
    return method + b" " + target + b" HTTP/1.1\r\n" + header_lines(headers) + b"\r\n"


def header_lines(headers: Sequence[tuple[bytes, bytes]]) -> bytes:
    """``Name: value`` lines, each ended by CRLF, refusing line breaks or NULs in any of them.

    Raises:
        httpx.LocalProtocolError: a line break or NUL in a name or a value.
    """
    _refuse_line_breaks([part for header in headers for part in header])
    return b"".join(name + b": " + value + b"\r\n" for name, value in headers)


def _refuse_line_breaks(parts: list[bytes]) -> None:
    # Checked on the parts joined without separators: three scans of one string in C.
    unseparated = b"".join(parts)
    if any(char in unseparated for char in _FORBIDDEN_IN_HEAD):
        raise httpx.LocalProtocolError("a request line or header holds a line break or NUL")
