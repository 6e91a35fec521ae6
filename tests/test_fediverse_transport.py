import asyncio
import json
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import httpx
import pytest

from fedimeter.domain.handles import parse_account_ref
from fedimeter.domain.models import InstanceAddress
from fedimeter.errors import AddressRefused, RemoteUnavailable
from fedimeter.fediverse import FediverseClient, GuardedTransport
from fedimeter.fediverse.http import Fetcher
from fedimeter.fediverse.transport import system_resolver
from test_fediverse_support import make_settings

PUBLIC = "93.184.215.14"


class TinyServer:
    """A real HTTP/1.1 server on 127.0.0.1 that answers every request with one JSON body."""

    def __init__(self, *, drip: bool = False) -> None:
        """With ``drip`` the server sends its body one byte every 50 ms."""
        self.drip = drip
        self.connections = 0
        self.heads: list[str] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen on a free port."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening."""
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.heads.append(head.decode("latin-1"))
            body = json.dumps({"ok": True, "port": self.port}).encode()
            if self.drip:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
                writer.write(b"Content-Length: 100000\r\n\r\n")
                for _ in range(1000):
                    writer.write(b" ")
                    await writer.drain()
                    await asyncio.sleep(0.05)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def host_headers(self) -> list[str]:
        """The Host header of every request received."""
        return [
            line.split(":", 1)[1].strip()
            for head in self.heads
            for line in head.split("\r\n")
            if line.lower().startswith("host:")
        ]


@pytest.fixture
async def server() -> AsyncIterator[TinyServer]:
    """A running TinyServer."""
    tiny = TinyServer()
    await tiny.start()
    yield tiny
    await tiny.stop()


class StubResolver:
    """DNS that answers from a script: one list of addresses per lookup, per name."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        """The last answer for a name repeats once the script runs out."""
        self.answers = answers
        self.lookups: list[str] = []

    async def __call__(self, host: str, _port: int) -> Sequence[str]:
        """Answer the next scripted addresses for ``host``."""
        self.lookups.append(host)
        script = self.answers[host]
        return script.pop(0) if len(script) > 1 else script[0]


class ScriptedConnector:
    """Stands in for sockets: records which address was dialled and answers from a script.

    Each connection is one end of a socket pair; the other end reads the request and writes
    the scripted answer. TLS is not spoken: the server name it would check is logged.
    """

    def __init__(self, answers: dict[str, bytes]) -> None:
        """``answers`` maps an IP address to the response served there."""
        self.answers = answers
        self.dialled: list[str] = []
        self.log: list[str] = []
        self._serving: set[asyncio.Task[None]] = set()

    async def __call__(
        self,
        protocol_factory: Callable[[], asyncio.Protocol],
        address: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        server_hostname: str,
    ) -> object:
        """Record the address dialled; refuse addresses without a script."""
        del port
        self.dialled.append(address)
        if address not in self.answers:
            raise ConnectionRefusedError(f"nothing listens on {address}")
        if ssl_context is not None:
            self.log.append(f"TLS {server_hostname}")
        ours, theirs = socket.socketpair()
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_connection(protocol_factory, sock=ours)
        task = asyncio.create_task(self._serve(theirs, self.answers[address]))
        self._serving.add(task)
        task.add_done_callback(self._serving.discard)
        return transport

    async def _serve(self, sock: socket.socket, answer: bytes) -> None:
        reader, writer = await asyncio.open_connection(sock=sock)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.log.append(head.decode("latin-1"))
            writer.write(answer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


def ok_answer(body: object = None) -> bytes:
    """A raw 200 answer with a JSON body."""
    data = json.dumps(body if body is not None else {"ok": True}).encode()
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
        + f"Content-Length: {len(data)}\r\n\r\n".encode()
        + data
    )


def redirect_answer(location: str) -> bytes:
    """A raw 302 answer to ``location``."""
    return (
        b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\nConnection: close\r\n"
        + f"Location: {location}\r\n\r\n".encode()
    )


def fetcher(transport: httpx.AsyncBaseTransport, **settings: Any) -> Fetcher:
    """A Fetcher without retries over ``transport``."""
    return Fetcher(make_settings(max_retries=0, **settings), transport)


async def test_connection_goes_to_the_resolved_and_checked_address(server: TinyServer) -> None:
    """A name the system cannot resolve reaches our server only through the pinned address."""
    resolver = StubResolver({"pinned.test": [["127.0.0.1"]]})
    transport = GuardedTransport(make_settings(allow_private_addresses=True), resolver=resolver)
    reply = await fetcher(transport).get_json(f"http://pinned.test:{server.port}/x")
    await transport.aclose()
    assert reply.data == {"ok": True, "port": server.port}
    assert server.host_headers() == [f"pinned.test:{server.port}"]
    assert resolver.lookups == ["pinned.test"]


async def test_loopback_literal_is_refused_by_default(server: TinyServer) -> None:
    """Without allow_private_addresses, 127.0.0.1 is refused before any connection."""
    transport = GuardedTransport(make_settings())
    with pytest.raises(AddressRefused, match=r"^127\.0\.0\.1 is a loopback address; set allow_"):
        await fetcher(transport).get_json(f"http://127.0.0.1:{server.port}/x")
    await transport.aclose()
    assert server.connections == 0


async def test_name_resolving_to_loopback_is_refused(server: TinyServer) -> None:
    """A host name whose DNS answer is private is refused, naming both."""
    resolver = StubResolver({"sneaky.test": [["127.0.0.1"]]})
    transport = GuardedTransport(make_settings(), resolver=resolver)
    with pytest.raises(AddressRefused, match=r"sneaky\.test \(127\.0\.0\.1\) is a loopback"):
        await fetcher(transport).get_json(f"http://sneaky.test:{server.port}/x")
    await transport.aclose()
    assert server.connections == 0


@pytest.mark.parametrize(
    "host", ["2130706433", "0x7f.1", "017700000001", "127.1", "[::ffff:127.0.0.1]"]
)
async def test_numeric_loopback_forms_are_refused(server: TinyServer, host: str) -> None:
    """Decimal, hex, octal, short and IPv4-mapped spellings of 127.0.0.1 are all refused."""
    resolver = StubResolver({})
    transport = GuardedTransport(make_settings(), resolver=resolver)
    with pytest.raises(AddressRefused, match="loopback"):
        await fetcher(transport).get_json(f"http://{host}:{server.port}/x")
    await transport.aclose()
    assert server.connections == 0
    assert resolver.lookups == []


async def test_numeric_form_means_the_address_it_spells(server: TinyServer) -> None:
    """With private addresses allowed, ``2130706433`` really connects to 127.0.0.1."""
    transport = GuardedTransport(
        make_settings(allow_private_addresses=True), resolver=StubResolver({})
    )
    reply = await fetcher(transport).get_json(f"http://2130706433:{server.port}/x")
    await transport.aclose()
    assert reply.data == {"ok": True, "port": server.port}


async def test_private_address_allowed_by_the_setting(server: TinyServer) -> None:
    """allow_private_addresses lets the client measure a server on loopback."""
    transport = GuardedTransport(make_settings(allow_private_addresses=True))
    reply = await fetcher(transport).get_json(f"http://127.0.0.1:{server.port}/x")
    await transport.aclose()
    assert reply.status == 200
    assert server.connections == 1


async def test_changing_dns_answer_never_reaches_the_unchecked_address() -> None:
    """DNS rebinding: the first lookup is public and used; the second, private, is refused."""
    resolver = StubResolver({"rebind.test": [[PUBLIC], ["127.0.0.1"]]})
    connector = ScriptedConnector({PUBLIC: ok_answer(), "127.0.0.1": ok_answer({"leak": True})})
    transport = GuardedTransport(make_settings(), resolver=resolver, connector=connector)
    first = await fetcher(transport).get_json("http://rebind.test/a")
    with pytest.raises(AddressRefused, match="loopback"):
        await fetcher(transport).get_json("http://rebind.test/b")
    await transport.aclose()
    assert first.data == {"ok": True}
    assert connector.dialled == [PUBLIC]
    assert resolver.lookups == ["rebind.test", "rebind.test"]


async def test_one_private_address_among_public_ones_refuses_the_host() -> None:
    """A DNS answer mixing public and private addresses is refused as a whole."""
    resolver = StubResolver({"mixed.test": [[PUBLIC, "10.0.0.7"]]})
    connector = ScriptedConnector({PUBLIC: ok_answer()})
    transport = GuardedTransport(make_settings(), resolver=resolver, connector=connector)
    with pytest.raises(AddressRefused, match=r"mixed\.test \(10\.0\.0\.7\) is a private address"):
        await fetcher(transport).get_json("http://mixed.test/")
    await transport.aclose()
    assert connector.dialled == []


async def test_next_address_is_tried_when_the_first_does_not_answer() -> None:
    """When the first checked address refuses, the next checked one is dialled."""
    other = "93.184.215.15"
    resolver = StubResolver({"two.test": [[PUBLIC, other]]})
    connector = ScriptedConnector({other: ok_answer()})
    transport = GuardedTransport(make_settings(), resolver=resolver, connector=connector)
    reply = await fetcher(transport).get_json("http://two.test/")
    await transport.aclose()
    assert reply.ok
    assert connector.dialled == [PUBLIC, other]


async def test_tls_uses_the_host_name_not_the_address() -> None:
    """SNI and certificate checks get the host name even though the socket dials the IP."""
    resolver = StubResolver({"social.test": [[PUBLIC]]})
    connector = ScriptedConnector({PUBLIC: ok_answer()})
    transport = GuardedTransport(make_settings(), resolver=resolver, connector=connector)
    await fetcher(transport).get_json("https://social.test/api")
    await transport.aclose()
    assert connector.dialled == [PUBLIC]
    assert connector.log[0] == "TLS social.test"
    assert "Host: social.test\r\n" in connector.log[1]


@pytest.mark.parametrize(
    ("location", "refused"),
    [
        ("http://10.0.0.5/x", "10.0.0.5 is a private address"),
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254 is a link-local address"),
        ("http://internal.test/x", r"internal\.test \(192\.168\.1\.1\) is a private address"),
        ("http://0x7f.1/x", r"0x7f\.1 \(127\.0\.0\.1\) is a loopback address"),
    ],
)
async def test_redirect_into_a_private_range_is_refused(location: str, refused: str) -> None:
    """Every redirect target passes the guard again; a private one is never dialled."""
    resolver = StubResolver({"public.test": [[PUBLIC]], "internal.test": [["192.168.1.1"]]})
    connector = ScriptedConnector({PUBLIC: redirect_answer(location)})
    transport = GuardedTransport(make_settings(), resolver=resolver, connector=connector)
    with pytest.raises(AddressRefused, match=refused):
        await fetcher(transport).get_json("http://public.test/api/v1/accounts/1")
    await transport.aclose()
    assert connector.dialled == [PUBLIC]


async def test_webfinger_pointing_into_a_private_network_is_refused() -> None:
    """A public WebFinger naming a home on a private address does not get us there."""
    finger = {
        "subject": "acct:alice@public.test",
        "links": [
            {
                "rel": "self",
                "type": "application/activity+json",
                "href": "http://internal.test/users/alice",
            }
        ],
    }
    resolver = StubResolver({"public.test": [[PUBLIC]], "internal.test": [["192.168.1.1"]]})
    connector = ScriptedConnector({PUBLIC: ok_answer(finger)})
    transport = GuardedTransport(make_settings(), resolver=resolver, connector=connector)
    client = FediverseClient(make_settings(), transport=transport, default_scheme="http")
    with pytest.raises(AddressRefused, match=r"internal\.test \(192\.168\.1\.1\)"):
        await client.resolve(parse_account_ref("alice@public.test"))
    await transport.aclose()
    assert connector.dialled == [PUBLIC]


async def test_client_reports_a_refused_host_per_account() -> None:
    """Through FediverseClient, each account on a refused host gets AddressRefused."""
    resolver = StubResolver({"lan.test": [["192.168.0.10"]]})
    client = FediverseClient(make_settings(), resolver=resolver)
    async with client:
        batches = [
            batch
            async for batch in client.measure(
                InstanceAddress("lan.test"), ["1", "2"], supports_batch=False
            )
        ]
    errors = [m.error for batch in batches for m in batch]
    assert len(errors) == 2
    assert all(isinstance(error, AddressRefused) for error in errors)


async def test_unresolvable_name_is_a_connection_failure() -> None:
    """A name that does not resolve becomes RemoteUnavailable, not a crash."""

    async def failing(host: str, port: int) -> list[str]:
        raise OSError(f"Name or service not known: {host}")

    transport = GuardedTransport(make_settings(), resolver=failing)
    with pytest.raises(RemoteUnavailable, match=r"nowhere\.test could not be reached"):
        await fetcher(transport).get_json("http://nowhere.test/")
    await transport.aclose()


async def test_a_name_not_in_dns_fails_at_once_without_retries() -> None:
    """NXDOMAIN is an answer: one lookup, no retries, a message saying the name does not exist."""
    lookups: list[str] = []

    async def nxdomain(host: str, port: int) -> list[str]:
        lookups.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    transport = GuardedTransport(make_settings(), resolver=nxdomain)
    with pytest.raises(RemoteUnavailable, match=r"nowhere\.test does not exist"):
        await fetcher(transport).get_json("http://nowhere.test/")
    await transport.aclose()
    assert lookups == ["nowhere.test"]


async def test_a_resolver_in_trouble_is_retried() -> None:
    """EAI_AGAIN (temporary failure) is retried like any connection failure."""
    lookups: list[str] = []

    async def flaky(host: str, port: int) -> list[str]:
        lookups.append(host)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    async def no_sleep(_seconds: float) -> None:
        return None

    settings = make_settings(max_retries=2)
    transport = GuardedTransport(settings, resolver=flaky)
    with pytest.raises(RemoteUnavailable, match="could not be reached"):
        await Fetcher(settings, transport, sleep=no_sleep).get_json("http://nowhere.test/")
    await transport.aclose()
    assert len(lookups) == 3


async def test_slow_drip_is_cut_off_by_the_request_deadline() -> None:
    """A server that sends one byte at a time cannot hold a request past request_deadline."""
    tiny = TinyServer(drip=True)
    await tiny.start()
    transport = GuardedTransport(make_settings(allow_private_addresses=True))
    try:
        with pytest.raises(RemoteUnavailable, match=r"did not finish answering within 0\.3 s"):
            await fetcher(transport, request_deadline=0.3).get_json(
                f"http://127.0.0.1:{tiny.port}/x"
            )
    finally:
        await transport.aclose()
        await tiny.stop()


async def test_system_resolver_resolves_localhost() -> None:
    """The default resolver uses the system's getaddrinfo (no network needed for localhost)."""
    addresses = await system_resolver("localhost", 80)
    assert set(addresses) & {"127.0.0.1", "::1"}
