"""An httpx transport that only connects to addresses the SSRF guard approved.

``GuardedNetworkBackend`` resolves each host itself, refuses it when any address it resolves
to is not public (see ``netguard``), and then connects to the very address it checked: no
second DNS lookup happens between the check and the connection, so a DNS answer that changes
in between (DNS rebinding) cannot reach a private address. TLS still uses the host name for
SNI and certificate checks: ``connection.open_connection`` starts TLS with the URL's host.

``GuardedTransport`` puts a ``ConnectionPool`` over that backend (global connection limit,
keep-alive per origin; HTTP/1.1 parsed by httptools in ``connection``) and speaks
``httpx.AsyncBaseTransport``. Sockets are asyncio's own (``stream.AsyncioBackend``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeAlias

import httpcore
import httpx

from fedimeter.errors import RemoteUnavailable
from fedimeter.fediverse.netguard import check_address, ip_literal
from fedimeter.fediverse.pool import ConnectionPool
from fedimeter.fediverse.stream import AsyncioBackend

if TYPE_CHECKING:
    import ssl
    from collections.abc import Iterable

    from fedimeter.config import Settings
    from fedimeter.fediverse.netguard import IPAddress

__all__ = ["GuardedNetworkBackend", "GuardedTransport", "Resolver", "system_resolver"]

#: ``resolver(host, port)`` gives the IP addresses (as text) a host name resolves to.
Resolver: TypeAlias = Callable[[str, int], Awaitable[Sequence[str]]]

# Seconds an idle keep-alive connection stays open.
_KEEPALIVE_EXPIRY = 30.0
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


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Resolve, check, then connect to the checked address only."""

    def __init__(
        self,
        *,
        allow_private: bool,
        resolver: Resolver = system_resolver,
        connector: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        """Guard connections made through ``connector`` (default: asyncio's sockets)."""
        self._allow_private = allow_private
        self._resolver = resolver
        self._connector = connector if connector is not None else AsyncioBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Connect to ``host`` at an address that passed the guard.

        Raises:
            AddressRefused: the host is, or resolves to, an address that is not public.
            httpcore.ConnectError: the name does not resolve or no address accepts.
        """
        addresses = await self._addresses(host, port, timeout)
        for address in addresses:
            check_address(address, host=host, allow_private=self._allow_private)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._connector.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure or httpcore.ConnectError(f"{host} has no address to connect to")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Refuse: servers are only reached over TCP.

        Raises:
            httpcore.ConnectError: always.
        """
        del timeout, socket_options
        raise httpcore.ConnectError(f"unix sockets are not used ({path})")

    async def sleep(self, seconds: float) -> None:
        """Sleep as the wrapped backend does (httpcore's connect retries; we use none)."""
        await self._connector.sleep(seconds)

    async def _addresses(self, host: str, port: int, limit: float | None) -> list[IPAddress]:
        literal = ip_literal(host)
        if literal is not None:
            return [literal]
        try:
            async with asyncio.timeout(limit):
                answers = await self._resolver(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} took longer than {limit} s") from None
        except socket.gaierror as exc:
            if exc.errno in _NO_SUCH_NAME:
                # An answer, not a failure: retrying a typo only makes the person wait.
                raise RemoteUnavailable(f"{host} does not exist (the name is not in DNS)") from None
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        addresses: list[IPAddress] = []
        for answer in answers:
            try:
                addresses.append(ipaddress.ip_address(answer))
            except ValueError:
                raise httpcore.ConnectError(
                    f"{host} resolved to {answer!r}, not an address"
                ) from None
        if not addresses:
            raise httpcore.ConnectError(f"{host} resolved to no address")
        return addresses


class GuardedTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over a pool of guarded connections (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        *,
        resolver: Resolver = system_resolver,
        connector: httpcore.AsyncNetworkBackend | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """Build the pool from ``settings`` (``max_connections``, ``allow_private_addresses``).

        ``resolver`` and ``connector`` replace DNS and sockets, for tests.
        """
        backend = GuardedNetworkBackend(
            allow_private=settings.allow_private_addresses,
            resolver=resolver,
            connector=connector,
        )
        if ssl_context is None:
            ssl_context = httpx.create_ssl_context()
        ssl_context.set_alpn_protocols(["http/1.1"])
        self._pool = ConnectionPool(
            ssl_context=ssl_context,
            max_connections=settings.max_connections,
            keepalive_expiry=_KEEPALIVE_EXPIRY,
            network_backend=backend,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the pool.

        Raises:
            AddressRefused: the guard refused the host.
            httpx.TransportError: connecting, sending or reading failed.
        """
        if not isinstance(request.stream, httpx.AsyncByteStream):  # pragma: no cover
            raise TypeError("GuardedTransport needs an async request body")
        return await self._pool.send(request)

    async def aclose(self) -> None:
        """Close every pooled connection."""
        await self._pool.aclose()
