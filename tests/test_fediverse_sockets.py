"""Connections over real sockets: TLS checked against the host name, timeouts, closes."""

import asyncio
import ssl
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest
import trustme

from fedimeter.fediverse import GuardedTransport
from fedimeter.fediverse.connection import Connection, connect_socket
from test_fediverse_support import KeepAliveServer, make_settings


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A test certificate authority."""
    return trustme.CA()


def server_tls(ca: trustme.CA, name: str) -> ssl.SSLContext:
    """A server context with a certificate for ``name``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(context)
    return context


def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    """A client context that trusts only the test CA."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


async def to_loopback(_host: str, _port: int) -> Sequence[str]:
    """DNS that sends every name to 127.0.0.1."""
    return ["127.0.0.1"]


def transport(ca: trustme.CA | None = None) -> GuardedTransport:
    """A guarded transport that may reach loopback, trusting ``ca`` for TLS."""
    return GuardedTransport(
        make_settings(allow_private_addresses=True),
        resolver=to_loopback,
        ssl_context=client_tls(ca) if ca is not None else None,
    )


async def get(
    through: httpx.AsyncBaseTransport, url: str, *, read: float = 5.0, write: float = 5.0
) -> httpx.Response:
    """GET ``url`` and read the whole body."""
    timeout = httpx.Timeout(5.0, read=read, write=write).as_dict()
    response = await through.handle_async_request(
        httpx.Request("GET", url, extensions={"timeout": timeout})
    )
    try:
        await response.aread()
    finally:
        await response.aclose()
    return response


@pytest.fixture
async def silent() -> AsyncIterator[int]:
    """A port where the server accepts connections and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    for writer in held:
        writer.close()
    await server.wait_closed()


async def test_https_checks_the_certificate_against_the_host_name(ca: trustme.CA) -> None:
    """Over TLS the request reaches the server whose certificate names the host."""
    async with KeepAliveServer(tls=server_tls(ca, "fedi.test")) as server:
        guarded = transport(ca)
        for _ in range(2):
            response = await get(guarded, f"https://fedi.test:{server.port}/x")
            assert response.content == b'{"ok": true}'
        await guarded.aclose()
    assert server.connections == 1


async def test_a_certificate_for_another_name_is_refused(ca: trustme.CA) -> None:
    """A certificate that does not name the host fails the connection."""
    async with KeepAliveServer(tls=server_tls(ca, "other.test")) as server:
        guarded = transport(ca)
        with pytest.raises(httpx.ConnectError, match="certificate"):
            await get(guarded, f"https://fedi.test:{server.port}/x")
        await guarded.aclose()
    assert server.requests == 0


async def test_a_certificate_from_an_unknown_authority_is_refused(ca: trustme.CA) -> None:
    """A certificate the client does not trust fails the connection."""
    async with KeepAliveServer(tls=server_tls(trustme.CA(), "fedi.test")) as server:
        guarded = transport(ca)
        with pytest.raises(httpx.ConnectError, match="certificate"):
            await get(guarded, f"https://fedi.test:{server.port}/x")
        await guarded.aclose()


async def test_a_tls_handshake_that_never_ends_times_out(ca: trustme.CA, silent: int) -> None:
    """The connect timeout covers the TLS handshake."""
    guarded = transport(ca)
    timeout = httpx.Timeout(5.0, connect=0.1).as_dict()
    request = httpx.Request("GET", f"https://fedi.test:{silent}/x", extensions={"timeout": timeout})
    with pytest.raises(httpx.ConnectTimeout):
        await guarded.handle_async_request(request)
    await guarded.aclose()


async def test_a_server_that_never_answers_times_out(silent: int) -> None:
    """The read timeout ends a wait for an answer that does not come."""
    guarded = transport()
    with pytest.raises(httpx.ReadTimeout):
        await get(guarded, f"http://127.0.0.1:{silent}/x", read=0.1)
    await guarded.aclose()


async def test_a_body_the_server_does_not_read_times_out_writing(silent: int) -> None:
    """A request body the server never takes ends after the read timeout, as a write timeout."""
    guarded = transport()
    timeout = httpx.Timeout(5.0, read=0.2).as_dict()
    request = httpx.Request(
        "POST",
        f"http://127.0.0.1:{silent}/x",
        content=b"x" * (64 << 20),
        extensions={"timeout": timeout},
    )
    with pytest.raises(httpx.WriteTimeout):
        await guarded.handle_async_request(request)
    await guarded.aclose()


async def test_a_closed_port_is_a_connection_error() -> None:
    """Nothing listening: ConnectError."""
    async with KeepAliveServer() as server:
        port = server.port
    guarded = transport()
    with pytest.raises(httpx.ConnectError):
        await get(guarded, f"http://127.0.0.1:{port}/x")
    await guarded.aclose()


async def test_a_large_body_arrives_whole() -> None:
    """A body far larger than a socket read arrives intact, and the connection is reused."""
    body = bytes(range(256)) * 8192  # 2 MiB
    async with KeepAliveServer(body=body) as server:
        guarded = transport()
        for _ in range(2):
            response = await get(guarded, f"{server.url}/x")
            assert response.content == body
        await guarded.aclose()
    assert server.connections == 1


async def test_a_body_cut_short_is_a_protocol_error() -> None:
    """A server that closes before the announced length is all sent breaks the answer."""

    async def short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"cut":')
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(short, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    guarded = transport()
    with pytest.raises(httpx.RemoteProtocolError):
        await get(guarded, f"http://127.0.0.1:{port}/x")
    await guarded.aclose()
    server.close()
    await server.wait_closed()


async def test_a_connection_knows_when_its_server_has_gone() -> None:
    """An idle connection is no longer reusable once the server has closed it."""
    async with KeepAliveServer(close_after_answer=True) as server:
        connection = Connection(("http", "127.0.0.1", server.port))
        await connect_socket(connection.itself, "127.0.0.1", server.port, None, "127.0.0.1")
        assert connection.reusable
        answer = await connection.exchange(
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            limit=1000,
            error_limit=1000,
            read_timeout=5.0,
            deadline=None,
        )
        assert answer.body == server.body
        assert connection.reusable
        await asyncio.sleep(0.05)
        assert not connection.reusable
        connection.close()
