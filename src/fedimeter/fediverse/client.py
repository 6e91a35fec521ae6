"""``FediverseClient``: resolve accounts, read server info, measure accounts and instances."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Self

from fedimeter.clock import utc_now
from fedimeter.domain.models import DEFAULT_PORTS
from fedimeter.errors import ConfigError
from fedimeter.fediverse.http import Fetcher
from fedimeter.fediverse.instance import measure_instance
from fedimeter.fediverse.measure import HostMeasurer, Measurement
from fedimeter.fediverse.nodeinfo import read_server_info
from fedimeter.fediverse.resolve import AccountResolver
from fedimeter.fediverse.stats import RequestStats
from fedimeter.fediverse.statuses import StatusesRead, read_statuses
from fedimeter.fediverse.tags import fetch_tag, fetch_trending_tags
from fedimeter.fediverse.transport import GuardedTransport, Resolver, system_resolver

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
    from datetime import datetime
    from types import TracebackType

    import httpx

    from fedimeter.config import Settings
    from fedimeter.domain.instances import InstanceFigures, InstanceMeasurement
    from fedimeter.domain.models import AccountRef, InstanceAddress, ResolvedAccount, ServerInfo
    from fedimeter.domain.tags import TagName, TagReading, TrendingTag

__all__ = ["FediverseClient"]


class FediverseClient:
    """Talks to fediverse servers for fedimeter; one per collection round or process.

    Every request is paced by its host's rate-limit headers, retried on transient failures,
    size-capped, and (with the default transport) sent only to public addresses. Use it as an
    async context manager, or call ``aclose()``.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], datetime] = utc_now,
        resolver: Resolver = system_resolver,
        default_scheme: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Set the client up; nothing is sent until a method is called.

        Args:
            settings: limits, timeouts and the SSRF switch.
            transport: where requests go; default a ``GuardedTransport`` using ``resolver``.
                A transport given here is not closed by ``aclose()``.
            sleep: waits for backoff and rate limits (tests pass a recorder).
            clock: the time stamped on measurements and used for headers without ``Date``.
            resolver: DNS for the default transport.
            default_scheme: scheme for bare handles (``http`` for the simulated
                fediverse); default ``settings.default_scheme``.
            monotonic: the clock rate-limit waits are measured on (tests pass a fake one).

        Raises:
            ConfigError: ``default_scheme`` is neither http nor https.
        """
        default_scheme = default_scheme or settings.default_scheme
        if default_scheme not in DEFAULT_PORTS:
            raise ConfigError(f"default_scheme must be http or https, not {default_scheme!r}")
        self.settings = settings
        self.stats = RequestStats()
        self._owns_transport = transport is None
        self._transport = (
            transport if transport is not None else GuardedTransport(settings, resolver=resolver)
        )
        self._clock = clock
        self._fetcher = Fetcher(
            settings,
            self._transport,
            stats=self.stats,
            sleep=sleep,
            clock=clock,
            monotonic=monotonic,
        )
        self._resolver = AccountResolver(self._fetcher, default_scheme=default_scheme)
        self._batch_support: dict[str, bool] = {}

    async def __aenter__(self) -> Self:
        """Return the client itself."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the client."""
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections of the transport the client made itself."""
        if self._owns_transport:
            await self._transport.aclose()

    def halt(self) -> None:
        """Send no new request until ``resume()``: those under way finish; new ones raise Halted.

        A round that is stopping uses this so that answers already on the wire are kept.
        """
        self._fetcher.halted = True

    def resume(self) -> None:
        """Send requests again after ``halt()``."""
        self._fetcher.halted = False

    async def resolve(self, ref: AccountRef) -> ResolvedAccount:
        """Find the account's canonical handle, home server and id there.

        Raises:
            AccountNotFound: the home server has no such account.
            AddressRefused: a host involved is not a public address.
            AccessDenied, RateLimited, RemoteUnavailable, BadResponse, EndpointMissing: the
                home server could not be asked.
        """
        return await self._resolver.resolve(ref)

    async def server_info(self, address: InstanceAddress) -> ServerInfo:
        """The server's software, version and batch-call support, from NodeInfo.

        Returns:
            The information; fields are ``None`` when NodeInfo is missing or broken.

        Raises:
            AddressRefused: the server is not at a public address.
        """
        return await read_server_info(self._fetcher, address, clock=self._clock)

    async def measure_instance(
        self, address: InstanceAddress, previous: InstanceFigures | None = None
    ) -> InstanceMeasurement:
        """Measure the instance from every source it offers (NodeInfo and the instance API).

        Sources that fail are recorded in the measurement, never raised; figures that are not
        believable against ``previous`` are ``None`` and their source ``implausible``.

        Raises:
            AddressRefused: the server is not at a public address.
            Halted: the client is halted (a round is stopping): nothing was measured.
        """
        return await measure_instance(self._fetcher, address, clock=self._clock, previous=previous)

    async def tag(self, address: InstanceAddress, tag: TagName) -> TagReading:
        """The tag's daily use over the last days, as the server counts it (Mastodon 4.0+).

        Raises:
            EndpointMissing: the server has no hashtag API.
            AddressRefused, AccessDenied, RateLimited, RemoteUnavailable, BadResponse, Halted:
                the server could not be asked, or answered nonsense.
        """
        return await fetch_tag(self._fetcher, address, tag)

    async def trending_tags(self, address: InstanceAddress) -> tuple[TrendingTag, ...]:
        """The server's trending tags in order, each with its newest day's use.

        Raises:
            EndpointMissing: the server has no trends API.
            AddressRefused, AccessDenied, RateLimited, RemoteUnavailable, BadResponse, Halted:
                as ``tag``.
        """
        return await fetch_trending_tags(self._fetcher, address)

    async def account_statuses(
        self, address: InstanceAddress, remote_id: str, *, since: datetime, max_pages: int
    ) -> StatusesRead:
        """The account's public statuses posted at or after ``since``, newest first.

        40 a page, paging by the ``Link`` header until a page reaches past ``since`` (pages
        after the first meet the host's paging throttle and are paced by its budget), at most
        ``max_pages`` pages.

        Raises:
            AccountNotFound: the server has no such account (any more).
            AddressRefused, AccessDenied, RateLimited, RemoteUnavailable, BadResponse, Halted:
                the server could not be asked, or answered nonsense.
        """
        return await read_statuses(
            self._fetcher, address, remote_id, since=since, max_pages=max_pages
        )

    def measure(
        self,
        address: InstanceAddress,
        remote_ids: Sequence[str],
        *,
        supports_batch: bool | None,
    ) -> AsyncGenerator[list[Measurement], None]:
        """Measure accounts on their home server, yielding results as each request completes.

        Each distinct id gets exactly one ``Measurement``: a snapshot or an error
        (``AccountNotFound`` for a 404/410, so the caller can mark it gone). What this client
        learned about batch support overrides ``supports_batch``; ``None`` means probe.
        Closing the generator early (``aclose()``) cancels the requests still in flight.
        """
        return self._measurer(address, supports_batch=supports_batch).run(remote_ids)

    async def measure_into(
        self,
        address: InstanceAddress,
        remote_ids: Sequence[str],
        sink: Callable[[list[Measurement]], None],
        *,
        supports_batch: bool | None,
    ) -> None:
        """Measure as ``measure()`` does, handing each request's measurements to ``sink``.

        For a collector that only stores them: no generator to resume per answer.
        """
        await self._measurer(address, supports_batch=supports_batch).run_into(remote_ids, sink)

    def _measurer(self, address: InstanceAddress, *, supports_batch: bool | None) -> HostMeasurer:
        learned = self._batch_support.get(address.authority)

        def learn(value: bool) -> None:  # noqa: FBT001 - callback
            self._batch_support[address.authority] = value

        return HostMeasurer(
            self._fetcher,
            address,
            supports_batch=supports_batch if learned is None else learned,
            learn=learn,
            clock=self._clock,
        )

    def batch_support(self, address: InstanceAddress) -> bool | None:
        """Whether ``measure()`` found the batch call on this host; ``None`` if not tried."""
        return self._batch_support.get(address.authority)
