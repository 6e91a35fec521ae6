import asyncio
import ssl
from collections.abc import AsyncIterator, Sequence

import httpcore
import httpx
import pytest
import trustme

from fedimeter.fediverse import GuardedTransport
from fedimeter.fediverse.stream import AsyncioBackend
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
    """The write timeout ends a request body the server never takes."""
    guarded = transport()
    timeout = httpx.Timeout(5.0, write=0.2).as_dict()
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


async def test_a_large_body_read_slowly_arrives_whole() -> None:
    """A body far larger than the read buffer arrives intact when read a piece at a time."""
    body = bytes(range(256)) * 8192  # 2 MiB
    async with KeepAliveServer(body=body) as server:
        guarded = transport()
        response = await guarded.handle_async_request(httpx.Request("GET", f"{server.url}/x"))
        received = bytearray()
        async for chunk in response.aiter_raw():
            received += chunk
            await asyncio.sleep(0.001)
        await response.aclose()
        await guarded.aclose()
    assert bytes(received) == body


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


async def test_a_stream_knows_when_its_server_has_gone() -> None:
    """An idle stream is readable (so not reusable) once the server has closed it."""
    async with KeepAliveServer(close_after_answer=True) as server:
        stream = await AsyncioBackend().connect_tcp("127.0.0.1", server.port)
        assert stream.get_extra_info("is_readable") is False
        await stream.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        head = server.head
        received = b""
        while len(received) < len(head) + len(server.body):
            received += await stream.read(65536)
        assert received == head + server.body
        await asyncio.sleep(0.05)
        assert stream.get_extra_info("is_readable") is True
        assert await stream.read(65536) == b""
        await stream.aclose()


async def test_unix_sockets_are_never_used() -> None:
    """The asyncio backend refuses unix sockets too."""
    with pytest.raises(httpcore.ConnectError, match="unix sockets are not used"):
        await AsyncioBackend().connect_unix_socket("/var/run/docker.sock")
