"""One HTTP/1.1 connection against a server that answers exactly the bytes each test scripts."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import httpx
import pytest

from fedimeter.fediverse.connection import Connection, open_connection
from fedimeter.fediverse.stream import AsyncioBackend

TIMEOUTS: dict[str, float | None] = {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}
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
    connection = await open_connection(
        (b"http", b"127.0.0.1", script.port), AsyncioBackend(), ssl.create_default_context(), 5.0
    )
    try:
        yield connection
    finally:
        await connection.aclose()
        server.close()
        await server.wait_closed()


async def exchange(
    connection: Connection, script: Scripted, request: httpx.Request | None = None
) -> tuple[int, bytes, bool]:
    """Send, read the whole body, finish: status, body, whether the connection stays open."""
    request = request or httpx.Request("GET", f"http://127.0.0.1:{script.port}/api/v1/instance")
    head, body = await connection.send(request, TIMEOUTS)
    data = b"".join([chunk async for chunk in body])
    return head.status_code, data, await connection.finish()


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
    async with connected(script) as connection:
        request = httpx.Request(
            "GET", f"http://127.0.0.1:{script.port}/", headers={"X-Note": "a\r\nX-Evil: 1"}
        )
        with pytest.raises(httpx.LocalProtocolError, match="line break"):
            await connection.send(request, TIMEOUTS)
    assert script.requests == []


async def test_request_bodies_are_sent_with_a_length_or_in_chunks() -> None:
    """Bytes go with their Content-Length; a stream goes chunked, empty pieces skipped."""

    async def pieces() -> AsyncIterator[bytes]:
        yield b"first,"
        yield b""
        yield b"second"

    script = Scripted([OK, OK])
    async with connected(script) as connection:
        url = f"http://127.0.0.1:{script.port}/api/v1/statuses"
        assert await exchange(connection, script, httpx.Request("POST", url, json={"a": 1})) == (
            200,
            b"{}",
            True,
        )
        chunked = httpx.Request("POST", url, content=pieces())
        assert await exchange(connection, script, chunked) == (200, b"{}", True)
    assert script.requests[0].endswith(b'\r\n\r\n{"a":1}')
    assert script.requests[1].endswith(b"\r\n\r\n6\r\nfirst,\r\n6\r\nsecond\r\n0\r\n\r\n")
