"""``fedimeter worker``: rounds shared by several processes over one PostgreSQL, by host.

Each worker runs this loop: join the shared round under way, or plan one when the schedule
says a round is due (``LeaseStore.open_round``, serialised between workers); then claim hosts
of it (``claim``: biggest first, at most ``worker_hosts`` at once), measure each host's due
accounts and tracked instance exactly as ``collect_round`` does, commit results under the
host's lease, and mark the host done. The worker that finishes the last host finishes the
round (and delivers the scheduled report). A worker with nothing left to claim keeps
heartbeating the round and looks again every ``POLL_SECONDS``: the leases of a worker that
died expire, and it takes those hosts over.

While it holds hosts, a worker renews their leases every fifth of ``worker_lease_seconds``.
A lease found lost (another worker took over after it expired) stops that host at once; a
worker that cannot reach the database for three fifths of the lease stops its hosts itself,
before anyone else may take them: one host's rate budget lives in one worker at a time.

Stopping (SIGTERM) sends nothing new, commits the answers on the wire, and leaves unfinished
hosts to expire, so the worker that takes one over starts in a fresh rate-limit window.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fedimeter.clock import Clock, utc_now
from fedimeter.collect import (
    HostMeasure,
    RequestFigures,
    Results,
    ResultWriter,
    default_owner,
    owner_alive,
)
from fedimeter.engagement_tracking import measure_host_engagement
from fedimeter.errors import FedimeterError, LeaseLost, RoundInProgress
from fedimeter.instance_tracking import measure_tracked_instance
from fedimeter.scheduler import CLOCK_SKEW
from fedimeter.storage.engagement import EngagementStore
from fedimeter.storage.instances import InstanceStore
from fedimeter.storage.leases import LeaseStore
from fedimeter.storage.tags import TagStore
from fedimeter.tag_tracking import measure_host_tags

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from datetime import datetime

    from fedimeter.config import Settings
    from fedimeter.domain.schedule import Schedule
    from fedimeter.fediverse import FediverseClient
    from fedimeter.storage.engagement import EngagementAccount
    from fedimeter.storage.leases import HostLease
    from fedimeter.storage.records import InstanceRecord, RunRecord
    from fedimeter.storage.repository import Repository
    from fedimeter.storage.tags import TagRecord

__all__ = ["POLL_SECONDS", "Worker", "WorkerStats", "lease_warning"]

#: How often a worker with nothing to claim looks for hosts again (expired leases).
POLL_SECONDS = 10.0
#: After an unexpected error, wait this long before trying again.
RETRY_SECONDS = 30.0
#: Leases are renewed this many times per lease period.
RENEWALS_PER_LEASE = 5
#: Without a renewal for this share of the lease, the worker stops its hosts itself.
GIVE_UP_SHARE = 0.6
#: Mastodon's rate-limit window for API requests: a lease should outlast it.
MASTODON_WINDOW_SECONDS = 300.0

_LOG = logging.getLogger("fedimeter.worker")


@dataclass
class WorkerStats:
    """What this worker did, over its life."""

    rounds_finished: int = 0
    hosts_done: int = 0
    hosts_taken_over: int = 0
    hosts_lost: int = 0
    accounts_measured: int = 0
    accounts_failed: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class _Held:
    lease: HostLease
    task: asyncio.Task[RunRecord | None]


class Worker:
    """One worker process's share of shared rounds."""

    def __init__(
        self,
        repo: Repository,
        client: FediverseClient,
        settings: Settings,
        *,
        name: str | None = None,
        clock: Clock = utc_now,
        stop: asyncio.Event | None = None,
        on_finished: Callable[[RunRecord], Awaitable[None]] | None = None,
        poll_seconds: float = POLL_SECONDS,
        logger: logging.Logger = _LOG,
    ) -> None:
        """Work over ``repo`` (PostgreSQL) with ``client``.

        Args:
            repo: the shared database.
            client: the fediverse client (its rate limits are this worker's).
            settings: ``worker_lease_seconds``, ``worker_hosts`` and the collection settings.
            name: how this worker appears in leases; default ``hostname:pid``.
            clock: the time stamped on samples.
            stop: set it to stop cleanly (SIGTERM).
            on_finished: called with a round this worker finished (scheduled delivery).
            poll_seconds: how often to look for hosts when none can be claimed.
            logger: where the worker says what it does.

        Raises:
            ConfigError: the database is not PostgreSQL.
        """
        self.repo = repo
        self.leases = LeaseStore(repo)
        self.client = client
        self.settings = settings
        self.name = name or default_owner()
        self.clock = clock
        self.stop = stop or asyncio.Event()
        self.on_finished = on_finished
        self.poll_seconds = min(poll_seconds, settings.worker_lease_seconds / RENEWALS_PER_LEASE)
        self.log = logger
        self.stats = WorkerStats()
        self._figures = RequestFigures(client)

    @property
    def stopping(self) -> bool:
        """Whether the worker was asked to stop."""
        return self.stop.is_set()

    # -- the loops -------------------------------------------------------------------------

    async def run(self, schedule: Schedule) -> None:
        """Work on shared rounds on ``schedule`` until stopped; never raises otherwise."""
        self.log.info("worker %s started: rounds %s", self.name, schedule.describe())
        while not self.stopping:
            try:
                await self._turn(schedule)
            except RoundInProgress as exc:
                self.log.info("waiting: %s", exc)
                await self._pause(self.poll_seconds)
            except Exception as exc:  # noqa: BLE001 - the loop must outlive a bad moment
                self._error("the worker loop", exc)
                await self._pause(RETRY_SECONDS)
        self.log.info("worker %s stopped", self.name)

    async def _turn(self, schedule: Schedule) -> None:
        """Work on the round under way or due; else sleep until one may be (a poll at most)."""
        now = self.clock()

        def is_due(newest: datetime | None) -> bool:
            return schedule.is_overdue(now, _believable(newest, now))

        run = await self.leases.open_round(
            now, is_due=is_due, is_alive=lambda r: owner_alive(r, now)
        )
        if run is not None:
            await self.work(run)
            return
        newest = await self._newest_start()
        due = schedule.next_after(now, _believable(newest, now))
        await self._pause(min(self.poll_seconds, (due - now).total_seconds()))

    async def run_once(self) -> RunRecord | None:
        """Join the shared round under way, or start one now; return it when it is over.

        Returns:
            The round as it ended, or None when the worker was stopped first.

        Raises:
            RoundInProgress: a round of one process (``collect``, ``serve``) is running.
            StorageError: the database refused.
        """
        now = self.clock()
        run = await self.leases.open_round(
            now, is_due=lambda _newest: True, is_alive=lambda r: owner_alive(r, now)
        )
        if run is None:  # pragma: no cover - always due
            return None
        return await self.work(run)

    async def work(self, run: RunRecord) -> RunRecord | None:
        """Claim and measure hosts of ``run`` until it is finished (or the worker stops).

        Returns:
            The round as it ended, or None when the worker was stopped first.
        """
        if run.status != "running":
            return run
        self.log.info("working on round %d", run.id)
        held: dict[int, _Held] = {}
        renewer = asyncio.create_task(self._renew(held), name="fedimeter-lease-renewal")
        try:
            while not self.stopping:
                await self._claim(run, held)
                if not held:
                    current = await self.repo.get_run(run.id)
                    if current.status != "running":
                        return current
                    await self.leases.touch(run.id, self.clock())
                    await self._pause(self.poll_seconds)
                    continue
                tasks = {h.task for h in held.values()}
                stopper = asyncio.ensure_future(self.stop.wait())
                try:
                    await asyncio.wait(
                        {*tasks, stopper},
                        timeout=self.poll_seconds,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    stopper.cancel()
                finished = self._collect_done(held)
                if finished is not None:
                    return finished
            await self._stop_hosts(held)
            return None
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            for h in held.values():
                h.task.cancel()

    # -- hosts -----------------------------------------------------------------------------

    async def _claim(self, run: RunRecord, held: dict[int, _Held]) -> None:
        free = self.settings.worker_hosts - len(held)
        if free <= 0:
            return
        for lease in await self.leases.claim(
            run.id, self.name, limit=free, lease_seconds=self.settings.worker_lease_seconds
        ):
            if lease.taken_over:
                self.stats.hosts_taken_over += 1
            task = asyncio.create_task(self._host(lease), name=f"host-{lease.instance_id}")
            held[lease.instance_id] = _Held(lease, task)

    def _collect_done(self, held: dict[int, _Held]) -> RunRecord | None:
        """Forget hosts whose task ended; the round if one of them finished it."""
        finished: RunRecord | None = None
        for instance_id, h in list(held.items()):
            if not h.task.done():
                continue
            del held[instance_id]
            if h.task.cancelled():
                self.stats.hosts_lost += 1
                continue
            exc = h.task.exception()
            if exc is not None:
                error = _first_error(exc)
                if isinstance(error, LeaseLost):
                    self.stats.hosts_lost += 1
                    self.log.warning("%s", error)
                else:
                    self._error(f"host {instance_id}", error)
                continue
            self.stats.hosts_done += 1
            result = h.task.result()
            if result is not None:
                finished = result
        return finished

    async def _host(self, lease: HostLease) -> RunRecord | None:
        """Measure one held host; mark it done; return the round if that finished it."""
        instance = await self.repo.get_instance(lease.instance_id)
        if lease.taken_over:
            self.log.info(
                "taking over %s in round %d from a worker that stopped renewing it",
                instance.host,
                lease.run_id,
            )
        due = await self.leases.due_accounts(lease)
        measure_instance = await self.leases.instance_due(lease)
        tags_due, trends_due = await self.leases.tag_work(lease)
        engagement_due = await self.leases.engagement_work(lease)

        async def commit(batch: Results) -> None:
            delta = self._figures.take(batch.measured, batch.failed)
            try:
                await self.leases.commit(
                    lease,
                    self.clock(),
                    delta,
                    samples=batch.samples,
                    failures=batch.failures,
                    state_changes=batch.changes,
                )
            except BaseException:
                self._figures.give_back(delta)
                raise
            self.stats.accounts_measured += batch.measured
            self.stats.accounts_failed += batch.failed

        writer = ResultWriter(commit)
        host = HostMeasure(self.repo, self.client, self.settings, self.clock, writer, self.stop)

        async def measure() -> None:
            try:
                async with asyncio.TaskGroup() as group:
                    if due:
                        group.create_task(host.measure(instance, due))
                    if measure_instance:
                        group.create_task(self._instance(lease, instance))
                    if tags_due or trends_due:
                        group.create_task(self._tags(lease, instance, tags_due, trends=trends_due))
                    group.create_task(self._engagement(lease, engagement_due))
            finally:
                writer.queue.put_nowait(None)

        async with asyncio.TaskGroup() as group:
            group.create_task(writer.run())
            group.create_task(measure())
        if self.stopping:
            return None  # what is left stays due; the lease expires and another takes over
        finished = await self.leases.finish(lease, self.clock())
        if finished is not None:
            await self._round_finished(finished)
        return finished

    async def _instance(self, lease: HostLease, instance: InstanceRecord) -> None:
        async def still_held() -> None:
            await self.leases.check(lease)

        await measure_tracked_instance(
            InstanceStore(self.repo.db),
            self.client,
            instance,
            run_id=lease.run_id,
            before_storing=still_held,
        )

    async def _engagement(self, lease: HostLease, due: list[EngagementAccount]) -> None:
        """Read the timelines of the host's accounts with engagement on (none: nothing)."""
        if not due:
            return

        async def still_held() -> None:
            await self.leases.check(lease)

        done = await measure_host_engagement(
            EngagementStore(self.repo.db),
            self.client,
            self.settings,
            due,
            clock=self.clock,
            before_storing=still_held,
        )
        if done.accounts or done.failed:
            self.log.info(
                "engagement in round %d: %d timelines read (%d requests, %d paging), %d failed",
                lease.run_id,
                done.accounts,
                done.requests,
                done.paging_requests,
                len(done.failed),
            )

    async def _tags(
        self,
        lease: HostLease,
        instance: InstanceRecord,
        tags: list[TagRecord],
        *,
        trends: bool,
    ) -> None:
        async def still_held() -> None:
            await self.leases.check(lease)

        await measure_host_tags(
            TagStore(self.repo.db),
            self.client,
            tags,
            (instance.id, instance.host, instance.base_url) if trends else None,
            run_id=lease.run_id,
            clock=self.clock,
            before_storing=still_held,
        )

    async def _round_finished(self, run: RunRecord) -> None:
        # Request figures of this worker not carried by a commit yet (a host's last answers).
        delta = self._figures.take(0, 0)
        if delta.requests or delta.retries or delta.rate_limited:
            await self.leases.add_progress(run.id, self.clock(), delta)
        self.stats.rounds_finished += 1
        self.log.info(
            "round %d finished: %d measured, %d failed of %d",
            run.id,
            run.accounts_measured,
            run.accounts_failed,
            run.accounts_planned,
        )
        if self.on_finished is not None:
            try:
                await self.on_finished(run)
            except Exception as exc:  # noqa: BLE001 - delivery must not fail the round
                self._error("after the round", exc)

    async def _renew(self, held: dict[int, _Held]) -> None:
        """Renew held leases; stop hosts whose lease is lost or can no longer be vouched for."""
        period = self.settings.worker_lease_seconds
        interval = period / RENEWALS_PER_LEASE
        last_ok = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            current = [h.lease for h in held.values() if not h.task.done()]
            if not current:
                last_ok = time.monotonic()
                continue
            started = time.monotonic()
            try:
                lost = await self.leases.renew(current, lease_seconds=period)
            except Exception as exc:  # noqa: BLE001 - the database may be briefly away
                self._error("renewing leases", exc)
                if time.monotonic() - last_ok < period * GIVE_UP_SHARE:
                    continue
                self.log.warning(
                    "no lease renewal for %.0f s: stopping the hosts held",
                    time.monotonic() - last_ok,
                )
                lost = {lease.instance_id for lease in current}
            else:
                last_ok = started
            for instance_id in lost:
                h = held.get(instance_id)
                if h is not None and not h.task.done():
                    self.log.warning(
                        "lost host %d of round %d: stopping it", instance_id, h.lease.run_id
                    )
                    h.task.cancel()

    async def _stop_hosts(self, held: dict[int, _Held]) -> None:
        """Stopping: send nothing new, let answers on the wire be committed, then cancel."""
        if not held:
            return
        self.client.halt()
        try:
            tasks = {h.task for h in held.values()}
            await asyncio.wait(tasks, timeout=self.settings.request_deadline)
            self._collect_done(held)
        finally:
            self.client.resume()

    # -- helpers ---------------------------------------------------------------------------

    async def _newest_start(self) -> datetime | None:
        latest = await self.repo.list_runs(1)
        return latest[0].started_at if latest else None

    async def _pause(self, seconds: float) -> None:
        """Sleep, waking early when asked to stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), timeout=max(0.0, seconds))

    def _error(self, what: str, exc: BaseException) -> None:
        message = f"{what} failed: {exc}" if str(exc) else f"{what} failed: {type(exc).__name__}"
        self.stats.errors.append(message)
        self.log.log(
            logging.WARNING if isinstance(exc, FedimeterError) else logging.ERROR,
            "%s",
            message,
            exc_info=None if isinstance(exc, FedimeterError) else exc,
        )


def lease_warning(settings: Settings) -> str | None:
    """A warning when leases are too short to keep a host's budget in one worker, else None."""
    lease = settings.worker_lease_seconds
    needed = MASTODON_WINDOW_SECONDS + settings.request_deadline
    if lease >= needed:
        return None
    return (
        f"worker_lease_seconds ({lease:g} s) is shorter than Mastodon's rate-limit window"
        f" plus request_deadline ({needed:g} s): when a worker dies, the host taken over"
        " may get requests in a window the dead worker already spent"
    )


def _believable(newest: datetime | None, now: datetime) -> datetime | None:
    """A round start written while a clock ran far ahead is ignored (see the scheduler)."""
    if newest is not None and newest > now + CLOCK_SKEW:
        return None
    return newest


def _first_error(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc
