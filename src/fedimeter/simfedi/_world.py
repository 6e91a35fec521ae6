"""The simulated fediverse: instances, the simulated clock, serving, and the request log."""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal, Self

from fedimeter.simfedi._instance import SimInstance
from fedimeter.simfedi._pipeline import Dispatcher
from fedimeter.simfedi._ratelimit import RateLimit
from fedimeter.simfedi._records import RequestLog, RequestRecord, Server
from fedimeter.simfedi._server import HttpServer, listening_socket

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Collection, Iterator, Sequence

__all__ = ["DEFAULT_START", "SimFediverse"]

#: Where simulated time starts unless ``start`` says otherwise: a Monday, noon UTC.
DEFAULT_START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
#: Mastodon's budget for requests without a token.
MASTODON_RATE_LIMIT = RateLimit(limit=300, window=300.0)
_THREAD_START_TIMEOUT = 10.0
_ADD_WHILE_SERVING_TIMEOUT = 5.0


class SimFediverse:
    """A set of simulated instances sharing one seeded RNG, one clock and one request log."""

    def __init__(self, seed: int = 0, *, start: datetime | None = None) -> None:
        """Create an empty world; equal seeds give equal ids, ages and fault rolls.

        Raises:
            ValueError: ``start`` has no time zone.
        """
        if start is not None and start.tzinfo is None:
            raise ValueError("start must be timezone-aware (UTC)")
        self.seed = seed
        self.rng = random.Random(seed)  # noqa: S311 - simulation, not cryptography
        self._now = (start or DEFAULT_START).astimezone(UTC)
        self._instances: dict[str, SimInstance] = {}
        self._log = RequestLog()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._servers: list[HttpServer] = []

    def __repr__(self) -> str:
        """``SimFediverse(seed=1, instances=['alpha'], now=...)``."""
        return f"SimFediverse(seed={self.seed}, instances={list(self._instances)}, now={self._now})"

    # Simulated time --------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        """The simulated clock (timezone-aware UTC)."""
        return self._now

    def _clock(self) -> datetime:
        return self._now

    def advance(self, days: float = 0.0, *, hours: float = 0.0, minutes: float = 0.0) -> datetime:
        """Move simulated time forward; counts grow by their rates. Return the new time.

        Raises:
            ValueError: a step backwards.
        """
        step = timedelta(days=days, hours=hours, minutes=minutes)
        if step < timedelta(0):
            raise ValueError("simulated time only moves forward")
        self._now += step
        return self._now

    # Instances -------------------------------------------------------------------------

    def add_instance(
        self,
        name: str,
        *,
        software: str = "mastodon",
        version: str = "4.3.2",
        rate_limit: RateLimit | None = MASTODON_RATE_LIMIT,
        latency: tuple[float, float] = (0.0, 0.0),
        limited_federation: bool = False,
        account_domain: Literal["alias"] | None = None,
        alias_redirect: bool = False,
        disabled_endpoints: Collection[str] = frozenset(),
        gone_status: int = 404,
        users_total: int | None = None,
        active_month: int | None = None,
        open_registrations: bool = True,
        peers: int | Sequence[str] = 3,
        host: str = "127.0.0.1",
        title: str | None = None,
        max_characters: int = 500,
    ) -> SimInstance:
        """Create an instance and return it; see the package documentation for each option.

        An instance added while the world is serving starts listening at once.

        Raises:
            ValueError: the name is taken or an option cannot work.
        """
        if name in self._instances:
            raise ValueError(f"an instance called {name!r} exists already")
        instance = SimInstance(
            name,
            clock=self._clock,
            rng=self.rng,
            software=software,
            version=version,
            rate_limit=rate_limit,
            latency=latency,
            limited_federation=limited_federation,
            account_domain=account_domain,
            alias_redirect=alias_redirect,
            disabled_endpoints=disabled_endpoints,
            gone_status=gone_status,
            users_total=users_total,
            active_month=active_month,
            open_registrations=open_registrations,
            peers=peers,
            host=host,
            title=title,
            max_characters=max_characters,
        )
        self._instances[name] = instance
        if self._loop is not None:
            self._start_later(instance)
        return instance

    @property
    def instances(self) -> dict[str, SimInstance]:
        """Every instance by name (a copy)."""
        return dict(self._instances)

    def instance(self, name: str) -> SimInstance:
        """Return the instance called ``name``.

        Raises:
            KeyError: no such instance.
        """
        return self._instances[name]

    # Request log -----------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request received so far, oldest first (a snapshot, safe from any thread)."""
        return self._log.snapshot()

    def count(
        self, instance: str | None = None, endpoint: str | None = None, *, status: int | None = None
    ) -> int:
        """Count requests, optionally for one instance, endpoint kind and answer status."""
        return self._log.count(instance=instance, endpoint=endpoint, status=status)

    def count_over_limit(self, instance: str | None = None) -> int:
        """Count requests that arrived after their rate-limit window was spent (they got 429)."""
        return self._log.count(instance=instance, over_limit=True)

    @property
    def connections_accepted(self) -> int:
        """Connections the instances serving now have accepted (to see clients' reuse)."""
        return sum(server.accepted for server in list(self._servers))

    def clear_requests(self) -> None:
        """Forget the request log (rate-limit windows and fault counters are not touched)."""
        self._log.clear()

    # Serving ---------------------------------------------------------------------------

    def _bind(self, instance: SimInstance) -> list[HttpServer]:
        sockets: list[tuple[Server, HttpServer]] = []
        roles: list[Server] = ["web", "alias"] if instance.has_alias else ["web"]
        try:
            for role in roles:
                dispatcher = Dispatcher(
                    instance, server=role, clock=self._clock, rng=self.rng, log=self._log
                )
                sock = listening_socket(instance.host)
                sockets.append((role, HttpServer(sock, dispatcher.answer)))
        except OSError:
            for _, server in sockets:
                server.close_socket()
            raise
        ports = {role: server.port for role, server in sockets}
        instance.bind(ports["web"], ports.get("alias"))
        return [server for _, server in sockets]

    async def _start(self, servers: list[HttpServer]) -> None:
        # Registered before starting, so that a failed start still closes its socket.
        self._servers.extend(servers)
        for server in servers:
            await server.start()

    def _start_later(self, instance: SimInstance) -> None:
        loop = self._loop
        if loop is None:  # pragma: no cover - callers check
            return
        servers = self._bind(instance)
        future = asyncio.run_coroutine_threadsafe(self._start(servers), loop)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not loop:
            # Another thread (a sync test): wait so that the first request finds it serving.
            # On the loop's own thread the listening socket queues connections until then.
            future.result(timeout=_ADD_WHILE_SERVING_TIMEOUT)

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[Self]:
        """Serve every instance on the running event loop for the duration of the block.

        Raises:
            RuntimeError: the world is serving already.
        """
        if self._loop is not None:
            raise RuntimeError("this world is serving already")
        self._loop = asyncio.get_running_loop()
        try:
            for instance in list(self._instances.values()):
                await self._start(self._bind(instance))
            yield self
        finally:
            self._loop = None
            servers, self._servers = self._servers, []
            await asyncio.gather(*(server.close() for server in servers))

    @contextmanager
    def run_in_thread(self) -> Iterator[Self]:
        """Serve every instance from an event loop in a daemon thread, for synchronous code.

        Raises:
            RuntimeError: the world is serving already, or the thread did not start.
        """
        ready = threading.Event()
        failure: list[BaseException] = []
        stop: list[asyncio.Event] = []

        async def serve() -> None:
            stop.append(asyncio.Event())
            try:
                async with self.serving():
                    ready.set()
                    await stop[0].wait()
            except BaseException as error:
                failure.append(error)
                raise
            finally:
                ready.set()

        def main() -> None:
            # A failure is re-raised in the caller's thread; this thread only has to end.
            with contextlib.suppress(BaseException):
                asyncio.run(serve())

        if self._loop is not None:
            raise RuntimeError("this world is serving already")
        thread = threading.Thread(target=main, name="simfedi", daemon=True)
        thread.start()
        if not ready.wait(_THREAD_START_TIMEOUT) or failure:
            raise RuntimeError("the simulated fediverse could not start") from (
                failure[0] if failure else None
            )
        loop = self._loop
        try:
            yield self
        finally:
            if loop is not None:
                loop.call_soon_threadsafe(stop[0].set)
            thread.join(_THREAD_START_TIMEOUT)
