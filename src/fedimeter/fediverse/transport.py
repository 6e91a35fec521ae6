"""Connections only to addresses the SSRF guard approved, and an httpx transport over them.

``GuardedConnector`` resolves each host itself, refuses it when any address it resolves to is
not public (see ``netguard``), and then connects to the very address it checked: no second DNS
lookup happens between the check and the connection, so a DNS answer that changes in between
(DNS rebinding) cannot reach a private address. TLS still uses the host name for SNI and
certificate checks.

``GuardedTransport`` puts a ``ConnectionPool`` over that connector (global connection limit,
keep-alive per origin; HTTP/1.1 parsed by httptools in ``connection``). ``fetch`` is the
collector's path: a GET with ready-made headers, the whole answer back, no httpx objects built
(``Fetcher`` uses it). ``handle_async_request`` makes it an ``httpx.AsyncBaseTransport`` for
everything else (reports posted to Mastodon, webhooks), on the same pool and guard.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeAlias

import httpx

from fedimeter.errors import RemoteUnavailable
from fedimeter.fediverse.body import too_large
from fedimeter.fediverse.connection import (
    BodyTooLarge,
    Connection,
    connect_socket,
    header_lines,
    request_head,
)
from fedimeter.fediverse.netguard import check_address, ip_literal
from fedimeter.fediverse.pool import ConnectionPool

if TYPE_CHECKING:
    import ssl

    from fedimeter.config import Settings
    from fedimeter.fediverse.connection import Answer, Connector, Origin
    from fedimeter.fediverse.netguard import IPAddress
    from fedimeter.fediverse.target import Target

__all__ = ["GuardedConnector", "GuardedTransport", "Resolver", "system_resolver"]

#: ``resolver(host, port)`` gives the IP addresses (as text) a host name resolves to.
Resolver: TypeAlias = Callable[[str, int], Awaitable[Sequence[str]]]

# Seconds an idle keep-alive connection stays open.
_KEEPALIVE_EXPIRY = 30.0
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: getaddrinfo errors that mean the name does not exist, as opposed to a resolver in trouble
#: (EAI_AGAIN), which is worth retrying.
_NO_SUCH_NAME = frozenset(
    code for code in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None)) if code is not None
)


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the system resolver (``getaddrinfo`` in the loop's thread pool).

    Returns:
        The distinct addresses, in the order the system prefers them.

    Raises:
        OSError: the name does not resolve.
    """
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for *_, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class GuardedConnector:
    """Resolve, check, then connect to the checked address only."""

    def __init__(
        self,
        *,
        allow_private: bool,
        ssl_context: ssl.SSLContext,
        resolver: Resolver = system_resolver,
        connector: Connector = connect_socket,
    ) -> None:
        """Guard connections opened by ``connector`` (default: the loop's TCP and TLS)."""
        self._allow_private = allow_private
        self._ssl_context = ssl_context
        self._resolver = resolver
        self._connector = connector

    async def connect(self, origin: Origin, timeout: float | None) -> Connection:  # noqa: ASYNC109
        """Connect to ``origin`` at an address that passed the guard, TLS for https.

        Raises:
            AddressRefused: the host is, or resolves to, an address that is not public.
            RemoteUnavailable: the name is not in DNS.
            httpx.ConnectError, httpx.ConnectTimeout: the name does not resolve (for now),
                no address accepts, or TLS fails (a bad certificate included).
        """
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        addresses = await self._addresses(host, port, deadline)
        for address in addresses:
            check_address(address, host=host, allow_private=self._allow_private)
        tls = self._ssl_context if scheme == "https" else None
        failure: Exception | None = None
        for address in addresses:
            connection = Connection(origin)
            try:
                async with asyncio.timeout_at(deadline):
                    await self._connector(connection.itself, str(address), port, tls, host)
            except TimeoutError:
                connection.close()
                failure = httpx.ConnectTimeout(f"connecting to {host} took longer than {timeout} s")
                break
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                connection.close()
                failure = httpx.ConnectError(str(exc) or type(exc).__name__)
                continue
            return connection
        raise failure or httpx.ConnectError(f"{host} has no address to connect to")

    async def _addresses(self, host: str, port: int, deadline: float | None) -> list[IPAddress]:
        literal = ip_literal(host)
        if literal is not None:
            return [literal]
        try:
            async with asyncio.timeout_at(deadline):
                answers = await self._resolver(host, port)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"resolving {host} took too long") from None
        except socket.gaierror as exc:
            if exc.errno in _NO_SUCH_NAME:
                # An answer, not a failure: retrying a typo only makes the person wait.
                raise RemoteUnavailable(f"{host} does not exist (the name is not in DNS)") from None
            raise httpx.ConnectError(f"cannot resolve {host}: {exc}") from None
        except OSError as exc:
            raise httpx.ConnectError(f"cannot resolve {host}: {exc}") from None
        addresses: list[IPAddress] = []
        for answer in answers:
            try:
                addresses.append(ipaddress.ip_address(answer))
            except ValueError:
                raise httpx.ConnectError(f"{host} resolved to {answer!r}, not an address") from None
        if not addresses:
            raise httpx.ConnectError(f"{host} resolved to no address")
        return addresses


class GuardedTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over a pool of guarded connections (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        *,
        resolver: Resolver = system_resolver,
        connector: Connector = connect_socket,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """Build the pool from ``settings`` (``max_connections``, ``allow_private_addresses``).

        ``resolver`` and ``connector`` replace DNS and sockets, for tests.
        """
        if ssl_context is None:
            ssl_context = httpx.create_ssl_context()
        ssl_context.set_alpn_protocols(["http/1.1"])
        self._limit = settings.max_response_bytes
        self._connector = GuardedConnector(
            allow_private=settings.allow_private_addresses,
            ssl_context=ssl_context,
            resolver=resolver,
            connector=connector,
        )
        self._pool = ConnectionPool(
            max_connections=settings.max_connections,
            keepalive_expiry=_KEEPALIVE_EXPIRY,
            opener=self._connector.connect,
        )
        self._headers: Sequence[tuple[bytes, bytes]] = ()
        self._header_block = b""

    @property
    def pool(self) -> ConnectionPool:
        """The connections."""
        return self._pool

    async def fetch(
        self,
        target: Target,
        headers: Sequence[tuple[bytes, bytes]],
        *,
        limit: int,
        error_limit: int,
        read_timeout: float | None,
        connect_timeout: float | None,
        deadline: float | None,
    ) -> Answer:
        """GET ``target`` with ``headers`` (and Host) and return the whole answer.

        ``limit`` bounds a 2xx body, ``error_limit`` any other (see ``Connection.exchange``);
        ``deadline`` (the loop's clock) bounds everything: waiting for a connection,
        connecting, the answer.

        Raises:
            httpx.TransportError: connecting, sending or reading failed.
            DeadlinePassed, BodyTooLarge: see ``Connection.exchange``.
            AddressRefused, RemoteUnavailable: the guard refused the host.
        """
        if headers is not self._headers:
            # The caller passes the same headers every time: joined and checked once.
            self._header_block = header_lines(headers)
            self._headers = headers
        request = (
            b"GET "
            + target.raw_path
            + b" HTTP/1.1\r\nHost: "
            + target.netloc
            + b"\r\n"
            + self._header_block
            + b"\r\n"
        )
        return await self._pool.fetch(
            target.origin,
            request,
            limit=limit,
            error_limit=error_limit,
            read_timeout=read_timeout,
            connect_timeout=connect_timeout,
            wait_deadline=deadline,
            deadline=deadline,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the pool; the answer comes back read whole.

        Its body is bounded by ``max_response_bytes``; the ``timeout`` extension's ``read``
        applies between bytes (to the request's body going out as well), ``pool`` to waiting
        for a connection, ``connect`` to connecting.

        Raises:
            AddressRefused: the guard refused the host.
            BadResponse: the answer is larger than ``max_response_bytes``.
            httpx.TransportError: connecting, sending or reading failed.
        """
        timeouts = request.extensions.get("timeout", {})
        loop = asyncio.get_running_loop()
        wait = timeouts.get("pool")
        body = b"".join([chunk async for chunk in request.stream])  # type: ignore[union-attr]
        if any(
            name.lower() == b"transfer-encoding" and value.strip().lower() == b"chunked"
            for name, value in request.headers.raw
        ):
            body = (f"{len(body):x}\r\n".encode("ascii") + body + b"\r\n" if body else b"") + (
                b"0\r\n\r\n"
            )
        method = request.method.encode("ascii")
        head = request_head(method, request.url.raw_path, request.headers.raw)
        try:
            answer = await self._pool.fetch(
                _origin(request.url),
                head + body,
                limit=self._limit,
                error_limit=self._limit,
                read_timeout=timeouts.get("read"),
                connect_timeout=timeouts.get("connect"),
                wait_deadline=None if wait is None else loop.time() + wait,
                deadline=None,
            )
        except BodyTooLarge as exc:
            too_large(request.url.host, self._limit, exc.announced)
        if answer.body is None:
            too_large(request.url.host, self._limit, None)
        return httpx.Response(
            status_code=answer.status,
            headers=answer.raw_headers,
            stream=httpx.ByteStream(answer.body),
            extensions={
                "http_version": b"HTTP/" + answer.http_version.encode("ascii"),
                "reason_phrase": answer.reason,
            },
        )

    async def aclose(self) -> None:
        """Close every pooled connection."""
        await self._pool.aclose()


def _origin(url: httpx.URL) -> Origin:
    scheme = url.scheme
    if scheme not in _DEFAULT_PORTS:
        raise httpx.UnsupportedProtocol(f"{scheme or 'a missing'} scheme is not http(s)")
    # The ASCII form: an internationalised name travels as punycode.
    return (scheme, url.raw_host.decode("ascii"), url.port or _DEFAULT_PORTS[scheme])
