"""The simulated fediverse: instances, the simulated clock, serving, outages, the request log."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal, Self

from fedimeter.simfedi._instance import SimInstance
from fedimeter.simfedi._outages import Outage
from fedimeter.simfedi._pipeline import Dispatcher
from fedimeter.simfedi._ratelimit import RateLimit
from fedimeter.simfedi._records import RequestLog, RequestRecord, Server
from fedimeter.simfedi._server import HttpServer, listening_socket

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Collection, Iterator, Sequence

    from fedimeter.simfedi._ratelimit import Throttle

__all__ = ["DEFAULT_START", "MASTODON_PAGING_LIMIT", "MASTODON_RATE_LIMIT", "SimFediverse"]

#: Where simulated time starts unless ``start`` says otherwise: a Monday, noon UTC.
DEFAULT_START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
#: Mastodon's budget for requests without a token.
MASTODON_RATE_LIMIT = RateLimit(limit=300, window=300.0)
#: Mastodon's second budget, for paging requests without a token (per IP, 300 per 15 minutes).
MASTODON_PAGING_LIMIT = RateLimit(limit=300, window=900.0)
_THREAD_START_TIMEOUT = 10.0
_ADD_WHILE_SERVING_TIMEOUT = 5.0
_SWITCH_TIMEOUT = 5.0
_log = logging.getLogger(__name__)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


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
        self._servers_of: dict[str, list[HttpServer]] = {}
        self._outages: list[Outage] = []
        self._outage_tasks: set[asyncio.Task[None]] = set()
        #: Outages under way per instance: the host comes back when the last one ends.
        self._outages_running: dict[str, int] = {}

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
        paging_limit: RateLimit | None = MASTODON_PAGING_LIMIT,
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
        trends: bool = True,
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
            paging_limit=paging_limit,
            trends=trends,
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
        self,
        instance: str | None = None,
        endpoint: str | None = None,
        *,
        status: int | None = None,
        paging: bool | None = None,
    ) -> int:
        """Count requests, optionally for one instance, endpoint kind, answer status and paging.

        ``paging=True`` counts the requests the paging throttle counted (they carried ``page``,
        ``min_id``, ``max_id`` or ``since_id``), ``paging=False`` the others.
        """
        return self._log.count(instance=instance, endpoint=endpoint, status=status, paging=paging)

    def count_over_limit(
        self, instance: str | None = None, *, throttle: Throttle | None = None
    ) -> int:
        """Count requests that arrived after a rate-limit window was spent (they got 429).

        ``throttle`` (``api`` or ``paging``) counts only the refusals of that throttle.
        """
        return self._log.count(instance=instance, over_limit=True, throttle=throttle)

    @property
    def connections_accepted(self) -> int:
        """Connections the instances serving now have accepted (to see clients' reuse)."""
        return sum(server.accepted for server in list(self._servers))

    def clear_requests(self) -> None:
        """Forget the request log (rate-limit windows and fault counters are not touched)."""
        self._log.clear()

    # Outages ---------------------------------------------------------------------------

    def take_down(self, name: str) -> None:
        """Make instance ``name`` vanish: connections to it are refused until ``bring_up``.

        Its listening sockets (web and alias) close and its open connections, keep-alive and
        in-flight ones alike, are dropped; the ports stay reserved (bound, not listening), so
        the kernel refuses every new connection. Safe from any thread: from another thread it
        returns once the host refuses; on the world's loop (async tests) it acts at once. On
        a world that is not serving it marks the instance, which then starts down.

        Raises:
            KeyError: no such instance.
        """
        self._set_up(name, up=False)

    def bring_up(self, name: str) -> None:
        """Make instance ``name`` accept connections again, on the same ports as before.

        Safe from any thread, like ``take_down``; a no-op for an instance that is up.

        Raises:
            KeyError: no such instance.
        """
        self._set_up(name, up=True)

    def schedule_outage(self, name: str, *, after: float = 0.0, lasting: float | None) -> Outage:
        """Take ``name`` down ``after`` seconds from now, for ``lasting`` seconds (None: for good).

        Real time, like rate-limit windows. Declared before serving, the timer starts when
        the world starts serving; declared while it serves, at once. An outage runs in one
        serve only; one cut short by the end of serving leaves the instance up. Overlapping
        outages of one instance keep it down until the last one ends.

        Raises:
            KeyError: no such instance.
            ValueError: a negative ``after`` or a non-positive ``lasting``.
        """
        self.instance(name)
        outage = Outage(name, after, lasting)
        self._outages.append(outage)
        loop = self._loop
        if loop is not None:
            base = time.monotonic()
            if _running_loop() is loop:
                self._launch(outage, base)
            else:
                # Waits, so that an outage with after=0 has begun when this returns.
                launched = asyncio.run_coroutine_threadsafe(self._launch_soon(outage, base), loop)
                launched.result(timeout=_SWITCH_TIMEOUT)
        return outage

    @property
    def outages(self) -> list[Outage]:
        """Every outage scheduled so far, in the order declared."""
        return list(self._outages)

    def _set_up(self, name: str, *, up: bool) -> None:
        instance = self.instance(name)
        loop = self._loop
        if loop is None:
            instance.mark_up(up)
        elif _running_loop() is loop:
            self._switch(name, up=up)
        else:
            switched = asyncio.run_coroutine_threadsafe(self._switch_and_wait(name, up=up), loop)
            switched.result(timeout=_SWITCH_TIMEOUT)

    def _switch(self, name: str, *, up: bool) -> list[asyncio.Task[None]]:
        # On the loop's thread. Pausing is synchronous; resuming listens at once and returns
        # the tasks that start the accept loops.
        self._instances[name].mark_up(up)
        starting: list[asyncio.Task[None]] = []
        for server in self._servers_of.get(name, []):
            if not up:
                server.pause()
            elif (task := server.resume()) is not None:
                starting.append(task)
        return starting

    async def _switch_and_wait(self, name: str, *, up: bool) -> None:
        starting = self._switch(name, up=up)
        if starting:
            await asyncio.gather(*starting)

    async def _launch_soon(self, outage: Outage, base: float) -> None:
        self._launch(outage, base)

    def _launch(self, outage: Outage, base: float) -> None:
        # On the loop's thread. An outage due now begins before this returns, so that no
        # request slips in before it.
        if outage.launched or self._loop is None:
            return
        outage.launched = True
        if outage.after <= 0:
            self._begin(outage)
        task = asyncio.get_running_loop().create_task(self._run_outage(outage, base))
        self._outage_tasks.add(task)
        task.add_done_callback(self._outage_tasks.discard)

    def _begin(self, outage: Outage) -> None:
        name = outage.instance
        self._outages_running[name] = self._outages_running.get(name, 0) + 1
        outage.began = time.monotonic()
        self._switch(name, up=False)

    async def _run_outage(self, outage: Outage, base: float) -> None:
        name = outage.instance
        try:
            if outage.began is None:
                await asyncio.sleep(max(0.0, base + outage.after - time.monotonic()))
                self._begin(outage)
            if outage.lasting is None or outage.began is None:
                return
            try:
                await asyncio.sleep(max(0.0, outage.began + outage.lasting - time.monotonic()))
            finally:
                self._outages_running[name] -= 1
            if self._outages_running[name] == 0:
                await self._switch_and_wait(name, up=True)
            outage.ended = time.monotonic()
        except asyncio.CancelledError:
            # Serving ends: an outage cut short leaves the instance up for the next serve.
            if outage.began is not None and not outage.permanent:
                self._instances[name].mark_up(True)  # noqa: FBT003 - the state itself
            raise
        except OSError:  # the port could not be bound again: nothing left to switch
            _log.exception("simfedi could not run the outage of %s", name)

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

    async def _start(self, instance: SimInstance, servers: list[HttpServer]) -> None:
        # Registered before starting, so that a failed start still closes its socket.
        self._servers.extend(servers)
        self._servers_of[instance.name] = servers
        for server in servers:
            if not instance.up:
                server.pause()  # taken down before serving: the port is held, refusing
            await server.start()

    def _start_later(self, instance: SimInstance) -> None:
        loop = self._loop
        if loop is None:  # pragma: no cover - callers check
            return
        servers = self._bind(instance)
        future = asyncio.run_coroutine_threadsafe(self._start(instance, servers), loop)
        if _running_loop() is not loop:
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
                await self._start(instance, self._bind(instance))
            started = time.monotonic()
            for outage in list(self._outages):
                self._launch(outage, started)
            yield self
        finally:
            self._loop = None
            tasks = list(self._outage_tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._outages_running.clear()
            servers, self._servers = self._servers, []
            self._servers_of = {}
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
