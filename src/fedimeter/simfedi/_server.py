"""A small HTTP/1.1 server on asyncio and h11 that can misbehave on purpose.

h11 does the parsing and framing; this module owns the transport, which is what faults need:
answers that never come, connections reset with a TCP RST, bodies that drip or stop short.
Connections are kept alive between requests, as httpx expects, and one server handles as many
concurrent connections as the event loop can hold. A server can stop accepting and start again on
the same port (``pause``/``resume``): a host that vanishes for a while and comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import http
import logging
import socket
import struct
import time
from collections.abc import Awaitable, Callable

import h11

from fedimeter.simfedi._replies import JSON, Reply
from fedimeter.simfedi._request import MAX_REQUEST_BODY, Request

__all__ = ["Handler", "HttpServer", "bound_socket", "listening_socket"]

#: Answers one request and returns the reply and a callback for when it is sent or abandoned.
Handler = Callable[[Request], Awaitable[tuple[Reply, Callable[[], None]]]]

_log = logging.getLogger(__name__)
_READ_SIZE = 65536
#: Methods whose body is read and dropped, as before bodies mattered to any route.
_BODILESS = frozenset({"GET", "HEAD"})
#: A client still sending after this much of an oversized body gets its 413 and the
#: connection closes; below it the rest is read, so the 413 arrives on a usable connection.
_DRAIN_LIMIT = 64 << 20
_BACKLOG = 1024
_SERVER_ERROR = Reply(
    http.HTTPStatus.INTERNAL_SERVER_ERROR,
    b'{"error":"Internal Server Error"}',
    (("Content-Type", JSON),),
)
_BAD_REQUEST = Reply(
    http.HTTPStatus.BAD_REQUEST, b'{"error":"Bad Request"}', (("Content-Type", JSON),)
)


def bound_socket(host: str, port: int = 0) -> socket.socket:
    """Bind ``host:port`` (``port`` 0: an ephemeral one) without listening.

    A bound socket that does not listen holds its port while the kernel answers every
    connection attempt with a RST: to a client, connection refused. ``SO_REUSEADDR`` lets the
    port be bound again while connections of an earlier listener on it linger in TIME_WAIT (on
    Linux it never lets two sockets listen on one port).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.setblocking(False)  # noqa: FBT003 - the socket API's own signature
    except OSError:
        sock.close()
        raise
    return sock


def listening_socket(host: str) -> socket.socket:
    """Bind ``host`` on an ephemeral port and listen; the port is known at once.

    Binding synchronously lets an instance added while the world is serving have its address
    before the event loop starts accepting; the kernel queues early connections meanwhile.
    """
    sock = bound_socket(host)
    try:
        sock.listen(_BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:  # statuses such as Cloudflare's 520 have no standard phrase
        return "Unknown"


class _DateHeader:
    """``Date`` header value, formatted once per second (every answer carries one)."""

    def __init__(self) -> None:
        # One tuple, replaced whole, so worlds serving from several threads never pair a
        # second with another second's text.
        self._cached = (-1, "")

    def __call__(self) -> str:
        now = time.time()
        second, value = self._cached
        if int(now) != second:
            value = email.utils.formatdate(now, usegmt=True)
            self._cached = (int(now), value)
        return value


_date_header = _DateHeader()


class HttpServer:
    """Serves one listening socket with ``handler``; can stop and resume on the same port."""

    def __init__(
        self, sock: socket.socket, handler: Handler, *, max_body: int = MAX_REQUEST_BODY
    ) -> None:
        """Serve ``sock`` (bound and listening) once ``start`` is awaited.

        Request bodies larger than ``max_body`` bytes reach the handler as ``too_large``.
        """
        self._sock = sock
        self._host: str = sock.getsockname()[0]
        self._handler = handler
        self._max_body = max_body
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._accepting = True
        self._closed = False
        self._starting: asyncio.Task[None] | None = None
        #: Connections accepted so far.
        self.accepted = 0

    @property
    def port(self) -> int:
        """The port the socket is bound to (the same while paused)."""
        port: int = self._sock.getsockname()[1]
        return port

    @property
    def accepting(self) -> bool:
        """Whether the port listens (False between ``pause`` and ``resume``)."""
        return self._accepting

    def close_socket(self) -> None:
        """Close the listening socket of a server that never started."""
        self._sock.close()

    async def start(self) -> None:
        """Begin accepting connections (a server paused before its start only holds its port)."""
        if self._accepting and self._server is None:
            await self._serve(self._sock)

    def _current(self, sock: socket.socket) -> bool:
        return not self._closed and self._accepting and sock is self._sock

    async def _serve(self, sock: socket.socket) -> None:
        if not self._current(sock):
            return  # paused or closed before this task ran: the socket is closed already
        # start_serving=False: the server registers its socket with the loop only once it is
        # ours, so a pause at any await point closes whatever is serving.
        server = await asyncio.start_server(
            self._accept,
            sock=sock,
            limit=_READ_SIZE,
            backlog=_BACKLOG,
            start_serving=False,
        )
        if not self._current(sock):
            return  # paused or closed meanwhile: the socket is closed already, never served
        self._server = server
        await server.start_serving()

    def pause(self) -> None:
        """Stop accepting and drop every open connection, keeping the port: connection refused.

        Runs synchronously on the serving loop's thread: once it returns, connecting to the
        port is refused. The listening socket is closed and the port bound again at once
        without listening, so nothing else takes it before ``resume``.

        Raises:
            OSError: the port could not be bound again.
        """
        if self._closed or not self._accepting:
            return
        port = self.port
        self._accepting = False
        server, self._server = self._server, None
        if server is not None:
            server.close()  # stops accepting and closes the listening socket
        self._sock.close()
        self._drop_connections()
        self._sock = bound_socket(self._host, port)

    def resume(self) -> asyncio.Task[None] | None:
        """Listen again on the same port; return the task that starts accepting, if any.

        Runs on the serving loop's thread. The port listens once this returns (the kernel
        queues connections until the task runs the accept loop).
        """
        if self._closed or self._accepting:
            return None
        self._sock.listen(_BACKLOG)
        self._accepting = True
        self._starting = asyncio.get_running_loop().create_task(self._serve(self._sock))
        return self._starting

    def _drop_connections(self) -> None:
        for task, writer in list(self._connections.items()):
            # abort() closes the socket in a later loop callback; shutting it down first sends
            # the FIN now, so a client on the loop's own thread sees the connection end at once.
            # (uvloop's transports hand out a socket without shutdown(): TypeError.)
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError, TypeError):
                    sock.shutdown(socket.SHUT_RDWR)
            writer.transport.abort()
            task.cancel()

    async def close(self) -> None:
        """Stop accepting and drop every open connection (hanging ones included)."""
        self._closed = True
        if self._starting is not None:
            await asyncio.gather(self._starting, return_exceptions=True)
        if self._server is not None:
            self._server.close()
        self._drop_connections()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        self._sock.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - start_server always runs the callback in a task
            return
        self._connections[task] = writer
        self.accepted += 1
        try:
            await _Connection(reader, writer, self._handler, self._max_body).run()
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client went away or the server is stopping: nothing to answer
        finally:
            del self._connections[task]
            if not writer.is_closing():
                writer.close()


class _Connection:
    """One client connection: a loop of requests and answers until either side closes."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        handler: Handler,
        max_body: int,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._handler = handler
        self._max_body = max_body
        self._h11 = h11.Connection(h11.SERVER)

    async def _next_event(self) -> object:
        # h11 returns events or the NEED_DATA / PAUSED sentinels; callers test with isinstance.
        while True:
            event = self._h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            self._h11.receive_data(await self._reader.read(_READ_SIZE))

    async def run(self) -> None:
        """Answer requests until the connection closes."""
        while True:
            try:
                request = await self._read_request()
            except h11.RemoteProtocolError:
                if self._h11.our_state in {h11.IDLE, h11.SEND_RESPONSE}:
                    self._writer.write(self._encode(_BAD_REQUEST, head=False))
                    await self._writer.drain()
                return
            if request is None or not await self._serve(request):
                return
            if self._h11.our_state is not h11.DONE or self._h11.their_state is not h11.DONE:
                return  # Connection: close, or a client that stopped mid-request
            self._h11.start_next_cycle()

    async def _read_request(self) -> Request | None:
        event = await self._next_event()
        if not isinstance(event, h11.Request):
            return None
        method = event.method.decode("ascii", "replace")
        keep = method not in _BODILESS
        if keep and self._h11.they_are_waiting_for_100_continue:
            # curl sends "Expect: 100-continue" before larger bodies and waits for this.
            interim = h11.InformationalResponse(status_code=100, headers=[])
            self._writer.write(self._h11.send(interim) or b"")
        chunks: list[bytes] = []
        size = 0
        while True:
            part = await self._next_event()
            if isinstance(part, h11.EndOfMessage):
                break
            if not isinstance(part, h11.Data):
                return None
            size += len(part.data)
            if keep and size <= self._max_body:
                chunks.append(part.data)
            if keep and size > _DRAIN_LIMIT:
                break  # answered 413; the unread rest makes the connection close after it
        too_large = keep and size > self._max_body
        return Request(
            method=method,
            target=event.target.decode("latin-1"),
            headers=tuple(
                (name.decode("latin-1").lower(), value.decode("latin-1"))
                for name, value in event.headers
            ),
            body=b"" if too_large else b"".join(chunks),
            too_large=too_large,
        )

    async def _serve(self, request: Request) -> bool:
        """Answer ``request``; return whether the connection can take another one."""
        try:
            reply, finish = await self._handler(request)
        except Exception:  # noqa: BLE001 - a simulator bug must answer 500, not hang the client
            _log.exception("simfedi failed to answer %s %s", request.method, request.target)
            reply, finish = _SERVER_ERROR, lambda: None
        head = request.method == "HEAD"
        if reply.delivery == "normal":
            # Finished once handed to the transport: the client may read the log as soon as
            # the answer arrives.
            data = self._encode(reply, head=head)
            finish()
            self._writer.write(data)
            await self._writer.drain()
            return True
        try:
            match reply.delivery:
                case "reset":
                    self._reset()
                case "hang":
                    await self._hang()
                case "truncated":
                    await self._send_truncated(reply)
                case "drip":
                    return await self._send_drip(reply, head=head)
            return False
        finally:
            finish()

    def _response(self, reply: Reply, length: int) -> bytes:
        headers = [
            ("Date", _date_header()),
            *reply.headers,
            ("Content-Length", str(length)),
        ]
        event = h11.Response(
            status_code=reply.status, headers=headers, reason=_reason(reply.status)
        )
        return self._h11.send(event) or b""

    def _encode(self, reply: Reply, *, head: bool) -> bytes:
        data = self._response(reply, len(reply.body))
        if reply.body and not head:
            data += self._h11.send(h11.Data(data=reply.body)) or b""
        return data + (self._h11.send(h11.EndOfMessage()) or b"")

    async def _send_drip(self, reply: Reply, *, head: bool) -> bool:
        self._writer.write(self._response(reply, len(reply.body)))
        if not head:
            for index in range(len(reply.body)):
                await self._writer.drain()
                await asyncio.sleep(reply.interval)
                if self._writer.is_closing():
                    return False
                byte = reply.body[index : index + 1]
                self._writer.write(self._h11.send(h11.Data(data=byte)) or b"")
        self._writer.write(self._h11.send(h11.EndOfMessage()) or b"")
        await self._writer.drain()
        return True

    async def _send_truncated(self, reply: Reply) -> None:
        # Announce the whole body, send half of it, then close: the client sees the
        # connection end before Content-Length bytes arrived.
        self._writer.write(self._response(reply, len(reply.body)))
        self._writer.write(reply.body[: len(reply.body) // 2])
        await self._writer.drain()
        self._writer.close()

    async def _hang(self) -> None:
        # Keep reading (and ignoring) until the client gives up and closes.
        while await self._reader.read(_READ_SIZE):
            pass

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
        sock = self._writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._writer.transport.abort()
