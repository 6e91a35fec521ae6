"""One HTTP/1.1 connection against a server that answers exactly the bytes each test scripts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import httpx
import pytest

from fedimeter.fediverse.connection import (
    BodyTooLarge,
    Connection,
    DeadlinePassed,
    connect_socket,
    request_head,
)
from fedimeter.fediverse.transport import GuardedTransport
from test_fediverse_support import make_settings

LIMIT = 1_000_000
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class Scripted:
    """Answers the n-th request on a connection with ``answers[n]``.

    ``None`` closes the connection right after the answer before it, without waiting for
    another request.
    """

    def __init__(self, answers: Sequence[bytes | None], *, pieces: int = 1) -> None:
        """Script the answers; ``pieces`` splits each into that many writes."""
        self.answers = list(answers)
        self.pieces = pieces
        self.requests: list[bytes] = []
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection: read each request whole, write its answer."""
        try:
            for answer in self.answers:
                if answer is None:
                    break
                head = await reader.readuntil(b"\r\n\r\n")
                body = b""
                if b"chunked" in head.lower():
                    body = await reader.readuntil(b"0\r\n\r\n")
                elif b"content-length:" in head.lower():
                    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                    body = await reader.readexactly(length)
                self.requests.append(head + body)
                # Split the answer into pieces written apart, so parsing spans reads.
                step = max(1, -(-len(answer) // self.pieces))
                for start in range(0, len(answer), step):
                    writer.write(answer[start : start + step])
                    await writer.drain()
                    await asyncio.sleep(0.01 if self.pieces > 1 else 0)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def connected(script: Scripted) -> AsyncIterator[Connection]:
    """A ``Connection`` to a server playing ``script``."""
    server = await asyncio.start_server(script.handle, "127.0.0.1", 0)
    script.port = server.sockets[0].getsockname()[1]
    connection = Connection(("http", "127.0.0.1", script.port))
    await connect_socket(connection.itself, "127.0.0.1", script.port, None, "127.0.0.1")
    try:
        yield connection
    finally:
        connection.close()
        server.close()
        await server.wait_closed()


def get(script: Scripted, path: str = "/api/v1/instance") -> bytes:
    """A GET request's bytes."""
    return request_head(b"GET", path.encode(), [(b"Host", f"127.0.0.1:{script.port}".encode())])


async def exchange(
    connection: Connection,
    script: Scripted,
    request: bytes | None = None,
    *,
    limit: int = LIMIT,
    error_limit: int = LIMIT,
    read_timeout: float | None = 5.0,
    deadline: float | None = None,
) -> tuple[int, bytes | None, bool]:
    """One exchange: status, body, whether the connection stays fit for another."""
    answer = await connection.exchange(
        request or get(script),
        limit=limit,
        error_limit=error_limit,
        read_timeout=read_timeout,
        deadline=deadline,
    )
    return answer.status, answer.body, connection.reusable


async def test_a_content_length_answer_keeps_the_connection_for_the_next() -> None:
    """A framed answer read to its end leaves the connection open for the next request."""
    script = Scripted([OK, OK.replace(b"{}", b"[]")])
    async with connected(script) as connection:
        assert await exchange(connection, script) == (200, b"{}", True)
        assert connection.reusable
        assert await exchange(connection, script) == (200, b"[]", True)
    assert script.requests[0].startswith(b"GET /api/v1/instance HTTP/1.1\r\nHost: 127.0.0.1:")


async def test_a_chunked_answer_in_pieces_arrives_whole() -> None:
    """Chunks split across reads are joined, and the connection is reused after them."""
    answer = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    script = Scripted([answer, OK], pieces=7)
    async with connected(script) as connection:
        assert await exchange(connection, script) == (200, b"hello world", True)
        assert await exchange(connection, script) == (200, b"{}", True)


async def test_an_answer_without_length_runs_until_the_server_closes() -> None:
    """No length and no chunks: the body is all that comes until the close."""
    script = Scripted([b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it", None])
    async with connected(script) as connection:
        assert await exchange(connection, script) == (200, b"all of it", False)


async def test_informational_answers_before_the_real_one_are_skipped() -> None:
    """100 Continue and 103 Early Hints are not the answer."""
    answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + OK
    script = Scripted([answer, OK])
    async with connected(script) as connection:
        assert await exchange(connection, script) == (200, b"{}", True)


async def test_no_content_answers_do_not_wait_for_a_body() -> None:
    """A 204 has no body even without a length: nothing waits for the close."""
    script = Scripted([b"HTTP/1.1 204 No Content\r\n\r\n", OK])
    async with connected(script) as connection:
        assert await exchange(connection, script) == (204, b"", True)
        assert await exchange(connection, script) == (200, b"{}", True)


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(OK.replace(b"200 OK\r\n", b"200 OK\r\nConnection: close\r\n"), id="close"),
        pytest.param(OK.replace(b"HTTP/1.1", b"HTTP/1.0"), id="http-1.0"),
        pytest.param(OK + b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", id="unasked-answer"),
        pytest.param(OK + b"\x00garbage", id="garbage-after"),
    ],
)
async def test_a_connection_not_fit_for_another_request_is_closed(answer: bytes) -> None:
    """Connection: close, HTTP/1.0, or bytes after the answer: closed after it."""
    script = Scripted([answer, OK])
    async with connected(script) as connection:
        assert await exchange(connection, script) == (200, b"{}", False)
        assert not connection.reusable


async def test_an_http_1_0_answer_with_keep_alive_may_be_reused() -> None:
    """HTTP/1.0 with an explicit keep-alive stays open."""
    answer = OK.replace(b"HTTP/1.1 200 OK\r\n", b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n")
    script = Scripted([answer, OK])
    async with connected(script) as connection:
        assert await exchange(connection, script) == (200, b"{}", True)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"HELLO\r\n\r\n", "not valid HTTP/1.1"),
        (b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n", "not valid HTTP/1.1"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", "not valid HTTP/1.1"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 200_000 + b"\r\n\r\n", "larger than 102,400"),
        (b"HTTP/1.1 200 OK\r\n" + b"X: a\r\n" * 20_000 + b"\r\n", "larger than 102,400"),
        (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", "not valid HTTP/1.1"),
    ],
    ids=[
        "no-status-line",
        "header-without-colon",
        "bad-length",
        "huge-header",
        "many-headers",
        "switching-protocols",
    ],
)
async def test_a_bad_head_is_a_protocol_error(answer: bytes, message: str) -> None:
    """A malformed or oversized head is refused, and the connection closed."""
    script = Scripted([answer])
    async with connected(script) as connection:
        with pytest.raises(httpx.RemoteProtocolError, match=message):
            await exchange(connection, script)
        assert not connection.reusable


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"", "without sending an answer"),
        (b"HTTP/1.1 200 OK\r\nContent-Len", "in the middle of the answer's head"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", "before the end of the answer"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", "before the end"),
    ],
    ids=["nothing", "half-a-head", "short-body", "short-chunks"],
)
async def test_an_answer_cut_short_is_a_protocol_error(answer: bytes, message: str) -> None:
    """A close before the answer ends is an error, never a short body taken as whole."""
    script = Scripted([answer, None])
    async with connected(script) as connection:
        with pytest.raises(httpx.RemoteProtocolError, match=message):
            await exchange(connection, script)


async def test_a_header_smuggling_a_line_break_is_never_sent() -> None:
    """A header value with CR LF would inject headers: refused before anything is sent."""
    script = Scripted([OK])
    async with connected(script):
        transport = GuardedTransport(make_settings(allow_private_addresses=True))
        request = httpx.Request(
            "GET", f"http://127.0.0.1:{script.port}/", headers={"X-Note": "a\r\nX-Evil: 1"}
        )
        with pytest.raises(httpx.LocalProtocolError, match="line break"):
            await transport.handle_async_request(request)
        await transport.aclose()
    assert script.requests == []


@pytest.mark.parametrize(
    "head",
    [
        [(b"X-Note", b"a\r\nX-Evil: 1")],
        [(b"X-Note\r\nX-Evil", b"1")],
        [(b"X-Note", b"a\0b")],
    ],
)
def test_request_heads_refuse_line_breaks_and_nuls(head: list[tuple[bytes, bytes]]) -> None:
    """In a name or a value, CR, LF or NUL never reach the wire."""
    with pytest.raises(httpx.LocalProtocolError, match="line break or NUL"):
        request_head(b"GET", b"/", head)
    with pytest.raises(httpx.LocalProtocolError, match="line break or NUL"):
        request_head(b"GET", b"/a\r\nX: 1", [])


async def test_request_bodies_are_sent_with_a_length_or_in_chunks() -> None:
    """Bytes go with their Content-Length; a stream goes chunked, empty pieces skipped."""

    async def pieces() -> AsyncIterator[bytes]:
        yield b"first,"
        yield b""
        yield b"second"

    script = Scripted([OK, OK])
    async with connected(script):
        transport = GuardedTransport(make_settings(allow_private_addresses=True))
        url = f"http://127.0.0.1:{script.port}/api/v1/statuses"
        response = await transport.handle_async_request(httpx.Request("POST", url, json={"a": 1}))
        assert (response.status_code, await response.aread()) == (200, b"{}")
        chunked = httpx.Request("POST", url, content=pieces())
        response = await transport.handle_async_request(chunked)
        assert (response.status_code, await response.aread()) == (200, b"{}")
        assert transport.pool.open_connections == 1
        await transport.aclose()
    assert script.requests[0].endswith(b'\r\n\r\n{"a":1}')
    assert script.requests[1].endswith(b"\r\n\r\nc\r\nfirst,second\r\n0\r\n\r\n")


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n01234567890", id="announced"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"6\r\n012345\r\n5\r\n67890\r\n0\r\n\r\n",
            id="streamed",
        ),
    ],
)
async def test_a_success_body_over_the_limit_is_refused(answer: bytes) -> None:
    """A 2xx body larger than the limit fails, whether announced or counted as it comes."""
    script = Scripted([answer, OK], pieces=3)
    async with connected(script) as connection:
        with pytest.raises(BodyTooLarge) as raised:
            await exchange(connection, script, limit=10)
        assert not connection.reusable
    assert raised.value.limit == 10
    assert raised.value.announced == (11 if b"Content-Length" in answer else None)


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 10000000\r\n\r\n<html>", id="announced"
        ),
        pytest.param(
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n1f4\r\n"
            + b"x" * 500
            + b"\r\n",
            id="streamed",
        ),
    ],
)
async def test_an_error_body_over_its_limit_is_not_read(answer: bytes) -> None:
    """A 404 with a body over the error limit: the status stands at once, the rest unread.

    The body never ends here: waiting for it would end in the read timeout.
    """
    script = Scripted([answer, OK])
    async with connected(script) as connection:
        assert await exchange(connection, script, error_limit=100, read_timeout=3.0) == (
            404,
            None,
            False,
        )


async def test_an_error_body_within_its_limit_is_kept() -> None:
    """Error bodies under their limit come whole: their JSON says why."""
    error = b'{"error":"Record not found"}'
    answer = b"HTTP/1.1 404 Not Found\r\nContent-Length: %d\r\n\r\n%s" % (len(error), error)
    script = Scripted([answer, OK])
    async with connected(script) as connection:
        assert await exchange(connection, script, error_limit=100) == (404, error, True)


async def test_a_silent_server_times_out_reading() -> None:
    """Nothing arriving for read_timeout seconds ends the exchange, and the connection."""
    script = Scripted([None])  # reads the request, answers nothing, then closes
    script.answers = []
    hold = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await hold.wait()
        writer.close()

    script.handle = silent  # type: ignore[method-assign]
    async with connected(script) as connection:
        with pytest.raises(httpx.ReadTimeout, match=r"nothing arrived for 0\.2 s"):
            await exchange(connection, script, read_timeout=0.2)
        assert not connection.reusable
        hold.set()


async def test_a_drip_is_cut_off_by_the_deadline() -> None:
    """Bytes arriving often enough for the read timeout still cannot pass the deadline."""
    body = b" " * 40 + b"{}"
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    script = Scripted([answer], pieces=len(answer))  # a byte every 10 ms
    async with connected(script) as connection:
        loop = asyncio.get_running_loop()
        with pytest.raises(DeadlinePassed):
            await exchange(connection, script, read_timeout=1.0, deadline=loop.time() + 0.3)
        assert not connection.reusable


async def test_anything_arriving_between_exchanges_retires_the_connection() -> None:
    """A stray 408 on an idle connection means the server is closing it: not reused."""
    script = Scripted([OK + b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n"])
    async with connected(script) as connection:
        status, _, _ = await exchange(connection, script)
        assert status == 200
        await asyncio.sleep(0.05)
        assert not connection.reusable


async def test_an_abandoned_exchange_closes_the_connection() -> None:
    """Whoever stops waiting closes the connection; the late answer then goes nowhere."""
    script = Scripted([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"], pieces=2)
    async with connected(script) as connection:
        future = connection.exchange(
            get(script), limit=LIMIT, error_limit=LIMIT, read_timeout=5.0, deadline=None
        )
        await asyncio.sleep(0)
        future.cancel()
        connection.close()
        await asyncio.sleep(0.05)
        assert not connection.reusable
