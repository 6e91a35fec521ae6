"""A collection round: measure every due account on its home server and store the samples.

Accounts are grouped by host; hosts run concurrently (the client paces each by its own rate
limits), results flow through a queue to a single writer that commits them in batches together
with the round's totals. A crash therefore loses at most the batch being written, and the next
round resumes the interrupted one: it measures only the accounts that round did not reach.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import socket
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from fedimeter.clock import Clock, utc_now
from fedimeter.domain.models import AccountState
from fedimeter.engagement_tracking import EngagementRound, measure_engagement
from fedimeter.errors import (
    AccountNotFound,
    FediverseError,
    Halted,
    RateLimited,
    RemoteUnavailable,
)
from fedimeter.instance_tracking import measure_instances
from fedimeter.storage.engagement import EngagementStore
from fedimeter.storage.instances import InstanceStore
from fedimeter.storage.records import (
    AccountRecord,
    AccountStateChange,
    FailureRecord,
    NewFailure,
    NewSample,
    RunProgress,
    RunRecord,
)
from fedimeter.storage.tags import TagStore
from fedimeter.tag_tracking import TagRound, measure_tags

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine, Sequence
    from datetime import datetime

    from fedimeter.config import Settings
    from fedimeter.domain.instances import InstanceMeasurement
    from fedimeter.fediverse import FediverseClient, Measurement
    from fedimeter.storage.records import InstanceRecord
    from fedimeter.storage.repository import Repository

__all__ = [
    "COMMIT_INTERVAL",
    "HostMeasure",
    "ProgressListener",
    "RequestFigures",
    "ResultWriter",
    "Results",
    "RoundResult",
    "collect_round",
    "default_owner",
    "owner_alive",
]

HEARTBEAT_SECONDS = 15.0
#: Failures that may pass within minutes: worth another pass over the host in the round.
PASSING_ERRORS = (RemoteUnavailable, RateLimited)
#: A running round not heard from for this long is dead, whatever its owner says.
STALE_AFTER = timedelta(minutes=5)


class ProgressListener(Protocol):
    """Told how a round advances (the CLI draws a progress bar from it)."""

    def planned(self, total: int) -> None:
        """The round will measure ``total`` accounts."""

    def advanced(self, measured: int, failed: int) -> None:
        """So many more accounts were measured or failed."""


@dataclass
class RoundResult:
    """What a round did."""

    run: RunRecord
    resumed: RunRecord | None
    failures: list[FailureRecord]
    state_changes: list[tuple[AccountRecord, AccountState]] = field(default_factory=list)
    #: Tracked instances measured in this round, with what each said.
    instances: list[tuple[InstanceRecord, InstanceMeasurement]] = field(default_factory=list)
    #: What the round did with tracked hashtags and trending tags.
    tags: TagRound = field(default_factory=TagRound)
    #: What the round read of the timelines of accounts with engagement on, and its cost.
    engagement: EngagementRound = field(default_factory=EngagementRound)


def default_owner() -> str:
    """``hostname:pid``: who runs a round, so a later round can tell whether it died."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(run: RunRecord, now: datetime) -> bool:
    """Whether the process that runs ``run`` still lives.

    On this machine the pid tells at once (a killed collector is found dead immediately);
    elsewhere, a heartbeat older than ``STALE_AFTER`` means dead.
    """
    if now - run.heartbeat_at > STALE_AFTER:
        return False
    host, _, pid = run.owner.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # exists, owned by another user
            return True
    return True


@dataclass
class Results:
    """Results of some accounts, committed together."""

    samples: list[NewSample] = field(default_factory=list)
    failures: list[NewFailure] = field(default_factory=list)
    changes: list[AccountStateChange] = field(default_factory=list)

    def __bool__(self) -> bool:
        """Whether there is anything to commit."""
        return bool(self.samples or self.failures or self.changes)

    @property
    def size(self) -> int:
        """Samples, failures and state changes in all."""
        return len(self.samples) + len(self.failures) + len(self.changes)

    @property
    def measured(self) -> int:
        """Accounts with a sample."""
        return len({s.account_id for s in self.samples})

    @property
    def failed(self) -> int:
        """Accounts that failed."""
        return len({f.account_id for f in self.failures})


class RequestFigures:
    """A client's request figures since a starting point (a client may outlive a round)."""

    def __init__(self, client: FediverseClient) -> None:
        """Count from now on."""
        self.client = client
        self.base = self._now()
        self.taken = self.base

    def _now(self) -> tuple[int, int, float, int]:
        stats = self.client.stats
        return (stats.requests, stats.rate_limited, stats.rate_limit_wait_seconds, stats.retries)

    def progress(self, measured: int, failed: int) -> RunProgress:
        """Totals since the start, with the accounts given."""
        return _progress(measured, failed, self._now(), self.base)

    def take(self, measured: int, failed: int) -> RunProgress:
        """What was sent since the last ``take``, with the accounts given (for adding up)."""
        now = self._now()
        delta = _progress(measured, failed, now, self.taken)
        self.taken = now
        return delta

    def give_back(self, delta: RunProgress) -> None:
        """Undo a ``take`` whose figures could not be stored (the next take carries them)."""
        requests, limited, waited, retries = self.taken
        self.taken = (
            requests - delta.requests,
            limited - delta.rate_limited,
            waited - delta.rate_limit_wait_seconds,
            retries - delta.retries,
        )


def _progress(
    measured: int,
    failed: int,
    now: tuple[int, int, float, int],
    base: tuple[int, int, float, int],
) -> RunProgress:
    return RunProgress(
        accounts_measured=measured,
        accounts_failed=failed,
        requests=now[0] - base[0],
        rate_limited=now[1] - base[1],
        rate_limit_wait_seconds=round(now[2] - base[2], 3),
        retries=now[3] - base[3],
    )


#: Longest time results wait in the writer before they are committed. One transaction per
#: answer cost more CPU than everything else a round does (SQLAlchemy and the driver per
#: statement, a WAL write per commit); a crash loses at most this much of the round's answers,
#: which the round that resumes it asks for again.
COMMIT_INTERVAL = 1.0
#: Results that make the writer commit at once, whatever the interval (bounds the memory).
COMMIT_MAX_RESULTS = 5000


class ResultQueue:
    """Results waiting for the writer; ``None`` ends them.

    ``put_nowait`` only appends, and wakes the writer only when it has something to do: the
    first result while it is idle, the end, or ``max_results`` waiting. An ``asyncio.Queue``
    woke it (a future, a timeout scope) for every answer of a round.
    """

    def __init__(self, max_results: int) -> None:
        """Wake the writer at once when ``max_results`` results wait."""
        self._items: deque[Results | None] = deque()
        self._max_results = max_results
        #: Samples, failures and changes waiting.
        self.size = 0
        #: Whether the ``None`` that ends the results has been put.
        self.ended = False
        self._waiter: asyncio.Future[None] | None = None
        self._wake_on_any = False

    def put_nowait(self, item: Results | None) -> None:
        """Add results (or ``None``: no more will come)."""
        self._items.append(item)
        if item is None:
            self.ended = True
        else:
            self.size += item.size
        waiter = self._waiter
        if waiter is not None and not waiter.done() and (self._wake_on_any or self.urgent):
            waiter.set_result(None)

    def __len__(self) -> int:
        """Items waiting (results and the end)."""
        return len(self._items)

    @property
    def urgent(self) -> bool:
        """Whether the writer should commit without waiting for its interval."""
        return self.ended or self.size >= self._max_results

    async def wait(self, *, any_item: bool, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait until something is put (``any_item``), or until it is urgent, or ``timeout``."""
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        self._wake_on_any = any_item
        timer = None if timeout is None else loop.call_later(timeout, _wake, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def take(self) -> tuple[Results, bool]:
        """Up to ``max_results`` results (at least one item), and whether the end was reached."""
        batch = Results()
        taken = 0
        items = self._items
        while items and taken < self._max_results:
            item = items.popleft()
            if item is None:
                return batch, True
            batch.samples += item.samples
            batch.failures += item.failures
            batch.changes += item.changes
            taken += item.size
        self.size -= taken
        return batch, False


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class ResultWriter:
    """The single consumer that commits results, so SQLite sees one writer at a time."""

    def __init__(
        self,
        commit: Callable[[Results], Awaitable[None]],
        progress: ProgressListener | None = None,
        *,
        interval: float = COMMIT_INTERVAL,
        max_results: int = COMMIT_MAX_RESULTS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Commit queued results with ``commit``, at most once per ``interval`` seconds.

        ``max_results`` queued results are committed at once, and the end of the queue (the
        ``None`` put on it) commits what is left without waiting.
        """
        self._commit = commit
        self.listener = progress
        self.queue = ResultQueue(max_results)
        self.measured = 0
        self.failed = 0
        self.changes_seen: list[AccountStateChange] = []
        self.commits = 0
        self._interval = interval
        self._monotonic = monotonic

    async def run(self) -> None:
        """Commit results as they come, grouping what arrives within an interval.

        Ends after the ``None`` put on the queue.
        """
        queue = self.queue
        last_commit = -math.inf
        while True:
            if not len(queue):
                await queue.wait(any_item=True)
            if not queue.urgent:
                wait = last_commit + self._interval - self._monotonic()
                if wait > 0:
                    await queue.wait(any_item=False, timeout=wait)
            batch, done = queue.take()
            if batch:
                await self._write(batch)
                last_commit = self._monotonic()
            if done:
                return

    async def _write(self, batch: Results) -> None:
        measured, failed = batch.measured, batch.failed
        self.measured += measured
        self.failed += failed
        try:
            await self._commit(batch)
        except Exception:
            # Not stored (a full disk, say): the round's totals must not count it.
            self.measured -= measured
            self.failed -= failed
            raise
        self.changes_seen += batch.changes
        self.commits += 1
        if self.listener is not None:
            self.listener.advanced(measured, failed)


async def collect_round(
    repo: Repository,
    client: FediverseClient,
    settings: Settings,
    *,
    clock: Clock = utc_now,
    owner: str | None = None,
    progress: ProgressListener | None = None,
    on_start: Callable[[RunRecord], None] | None = None,
    stop: asyncio.Event | None = None,
) -> RoundResult:
    """Run one round: measure the due accounts, store samples and failures, record the run.

    ``on_start`` is told the run as soon as it is recorded. Setting ``stop`` ends the round
    early but cleanly: nothing new is sent, the requests on the wire finish (within
    ``request_deadline``), every answer is committed, and the run is recorded as interrupted
    so the next round resumes it.

    Returns:
        The finished run, the interrupted run it resumed (if any), and its failures.

    Raises:
        RoundInProgress: another round with a live owner holds the database.
        StorageError: the database refused; the run is marked failed where possible.
    """
    now = clock()
    run, resumed = await repo.start_run(
        now, owner or default_owner(), lambda r: owner_alive(r, now)
    )
    figures = RequestFigures(client)

    async def commit(batch: Results) -> None:
        await repo.commit_batch(
            run.id,
            clock(),
            figures.progress(writer.measured, writer.failed),
            samples=batch.samples,
            failures=batch.failures,
            state_changes=batch.changes,
        )

    writer = ResultWriter(commit, progress)
    if on_start is not None:
        on_start(run)
    measured_instances: list[tuple[InstanceRecord, InstanceMeasurement]] = []
    tag_round = TagRound()
    engagement_round = EngagementRound()
    try:
        cutoff = await _resume_cutoff(repo, resumed)
        due = await repo.accounts_to_measure(cutoff)
        await repo.set_planned(run.id, len(due))
        if progress is not None:
            progress.planned(len(due))
        host = HostMeasure(repo, client, settings, clock, writer, stop)

        async def instances_too() -> None:
            nonlocal tag_round, engagement_round
            measured_instances.extend(
                await measure_instances(
                    InstanceStore(repo.db), client, run_id=run.id, measured_since=cutoff
                )
            )
            tag_round = await measure_tags(
                TagStore(repo.db), client, run_id=run.id, measured_since=cutoff, clock=clock
            )
            engagement_round = await measure_engagement(
                EngagementStore(repo.db), client, settings, measured_since=cutoff, clock=clock
            )

        await _measure_and_write(host, run.id, due, stop, instances_too)
    except BaseException as exc:
        status = (
            "interrupted"
            if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt))
            else "failed"
        )
        with contextlib.suppress(Exception):
            await asyncio.shield(
                repo.finish_run(
                    run.id,
                    clock(),
                    figures.progress(writer.measured, writer.failed),
                    status=status,
                    error=_describe(exc),
                )
            )
        raise
    stopped = stop is not None and stop.is_set()
    finished = await repo.finish_run(
        run.id,
        clock(),
        figures.progress(writer.measured, writer.failed),
        status="interrupted" if stopped else "finished",
        error="stopped before it finished" if stopped else None,
    )
    return RoundResult(
        run=finished,
        resumed=resumed,
        failures=await repo.run_failures([run.id]),
        state_changes=_state_changes(due, writer),
        instances=measured_instances,
        tags=tag_round,
        engagement=engagement_round,
    )


async def _measure_and_write(
    host: HostMeasure,
    run_id: int,
    due: list[AccountRecord],
    stop: asyncio.Event | None,
    instances_too: Callable[[], Coroutine[Any, Any, None]],
) -> None:
    """Measure every host (and tracked instance) while the writer commits; stop when asked."""
    instances = {i.id: i for i in await host.repo.list_instances()}
    by_host: dict[int, list[AccountRecord]] = defaultdict(list)
    for account in due:
        by_host[account.instance_id].append(account)

    async def measure_hosts() -> None:
        async with asyncio.TaskGroup() as hosts:
            hosts.create_task(instances_too())
            for instance_id, host_accounts in by_host.items():
                hosts.create_task(host.measure(instances[instance_id], host_accounts))

    async def measure_then_close() -> None:
        await _unless_stopped(measure_hosts(), stop, host.client, host.settings.request_deadline)
        # Finished or stopped: the writer commits what is queued, then ends.
        host.writer.queue.put_nowait(None)

    heartbeat_task = asyncio.create_task(_heartbeat(host.repo, run_id, host.clock))
    try:
        # One group: if the writer fails (disk full, database gone), measuring stops at once
        # instead of sending requests whose results cannot be kept.
        async with asyncio.TaskGroup() as group:
            group.create_task(host.writer.run())
            group.create_task(measure_then_close())
    except BaseExceptionGroup as group_error:
        raise _first_error(group_error) from None
    finally:
        heartbeat_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat_task


async def _unless_stopped(
    work: Coroutine[Any, Any, None],
    stop: asyncio.Event | None,
    client: FediverseClient,
    grace: float,
) -> None:
    """Await ``work``; once ``stop`` is set, finish only what is on the wire.

    The client sends nothing new (the accounts not yet asked about stay due, not failed), the
    requests under way get up to ``grace`` seconds to answer, then whatever is left (a host
    waiting for a rate-limit reset, say) is cancelled.
    """
    task = asyncio.ensure_future(work)
    if stop is None:
        await task
        return
    watcher = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if task.done():
        await task
        return
    client.halt()
    try:
        await asyncio.wait({task}, timeout=grace)
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        client.resume()


async def _resume_cutoff(repo: Repository, resumed: RunRecord | None) -> datetime | None:
    """When the round that was cut short began, following a chain of interrupted rounds.

    Two crashes in a row make two interrupted rounds, the second resuming the first: what
    either of them measured counts, so the cut-off is the start of the first.
    """
    if resumed is None:
        return None
    root = resumed
    while root.resumes_run_id is not None:
        root = await repo.get_run(root.resumes_run_id)
    return root.started_at


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first error inside nested task groups, so callers see a FedimeterError, not a group."""
    first = group.exceptions[0]
    return _first_error(first) if isinstance(first, BaseExceptionGroup) else first


def _describe(exc: BaseException) -> str:
    if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt)):
        return "stopped before it finished"
    return str(exc) or type(exc).__name__


def _state_changes(
    due: Sequence[AccountRecord], writer: ResultWriter
) -> list[tuple[AccountRecord, AccountState]]:
    by_id = {a.id: a for a in due}
    return [(by_id[c.account_id], c.state) for c in writer.changes_seen]


async def _heartbeat(repo: Repository, run_id: int, clock: Clock) -> None:
    while True:
        await asyncio.sleep(HEARTBEAT_SECONDS)
        await repo.heartbeat(run_id, clock())


@dataclass
class HostMeasure:
    """One host's share of a round: its accounts measured, results queued for the writer."""

    repo: Repository
    client: FediverseClient
    settings: Settings
    clock: Clock
    writer: ResultWriter
    stop: asyncio.Event | None = None

    @property
    def stopping(self) -> bool:
        """Whether the round was asked to stop."""
        return self.stop is not None and self.stop.is_set()

    async def measure(self, instance: InstanceRecord, accounts: list[AccountRecord]) -> None:
        """Measure one host's accounts; each ends with a sample or a recorded reason.

        Accounts that failed for a passing reason (the host unreachable, 5xx after the
        retries, a 429 storm) are held back and asked for again after ``host_retry_delay``
        seconds, up to ``host_retry_passes`` times, within the host deadline: a host that
        vanishes for a minute mid-round does not cost its accounts the day's sample.
        """
        pending: dict[str, list[AccountRecord]] = defaultdict(list)
        for account in accounts:
            pending[account.remote_id].append(account)
        held: dict[str, tuple[list[AccountRecord], FediverseError]] = {}
        address = instance.address
        settings = self.settings
        deadline = settings.host_deadline
        queue = self.writer.queue
        try:
            async with asyncio.timeout(deadline):
                supports_batch = await self.batch_support(instance)
                for attempt in range(settings.host_retry_passes + 1):
                    if attempt > 0:
                        if not held or not await self._pause(settings.host_retry_delay):
                            break
                        pending.update((rid, accounts) for rid, (accounts, _) in held.items())
                        held.clear()
                    hold = held if attempt < settings.host_retry_passes else None
                    await self.client.measure_into(
                        address,
                        list(pending),
                        _sink(queue, pending, hold),
                        supports_batch=supports_batch,
                    )
                    supports_batch = self.client.batch_support(address)
                learned = self.client.batch_support(address)
                if learned is not None and learned != instance.supports_batch:
                    await self.repo.set_batch_support(instance.id, learned)
        except TimeoutError:
            reason = f"{instance.host} did not finish within the host deadline of {deadline:g} s"
            self._fail_held(held)
            self.fail_rest(pending, "deadline", reason)
        except FediverseError as exc:  # the host as a whole, e.g. a refused address
            if not self.stopping:
                self._fail_held(held)
                self.fail_rest(pending, exc.code, str(exc))
        if self.stopping:
            return  # accounts not reached stay due for the round that resumes this one
        self._fail_held(held)
        # The client answers for every id; this only guards against a bug there.
        self.fail_rest(pending, "no_answer", f"{instance.host} gave no answer for it")

    async def _pause(self, seconds: float) -> bool:
        """Wait ``seconds`` unless the round is asked to stop; whether to go on."""
        if self.stop is None:
            await asyncio.sleep(seconds)
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)
        return not self.stopping

    def _fail_held(self, held: dict[str, tuple[list[AccountRecord], FediverseError]]) -> None:
        """Record the held-back accounts' last errors: no pass is left for them."""
        if not held:
            return
        now = self.clock()
        failures = [
            NewFailure(account.id, error.code, str(error), now)
            for accounts, error in held.values()
            for account in accounts
        ]
        held.clear()
        self.writer.queue.put_nowait(Results(failures=failures))

    async def batch_support(self, instance: InstanceRecord) -> bool | None:
        """What we know of the batch call on this host, re-reading NodeInfo when stale."""
        now = self.clock()
        recheck = timedelta(hours=self.settings.software_recheck_hours)
        if instance.info_checked_at is not None and now - instance.info_checked_at <= recheck:
            return instance.supports_batch
        info = await self.client.server_info(instance.address)
        if self.stopping:  # NodeInfo was not asked: keep what we knew
            return instance.supports_batch
        await self.repo.update_instance_info(instance.id, info)
        return info.supports_batch

    def fail_rest(self, pending: dict[str, list[AccountRecord]], code: str, reason: str) -> None:
        """Record ``reason`` for every account still pending."""
        now = self.clock()
        failures = [
            NewFailure(a.id, code, reason, now) for group in pending.values() for a in group
        ]
        pending.clear()
        if failures:
            self.writer.queue.put_nowait(Results(failures=failures))


def _sink(
    queue: ResultQueue,
    pending: dict[str, list[AccountRecord]],
    hold: dict[str, tuple[list[AccountRecord], FediverseError]] | None,
) -> Callable[[list[Measurement]], None]:
    """Where one pass's measurements go: the writer's queue, as ``Results``."""

    def sink(measurements: list[Measurement]) -> None:
        queue.put_nowait(_outcome(measurements, pending, hold))

    return sink


def _outcome(
    measurements: Sequence[Measurement],
    pending: dict[str, list[AccountRecord]],
    hold: dict[str, tuple[list[AccountRecord], FediverseError]] | None = None,
) -> Results:
    """What the writer stores for ``measurements``; passing failures go to ``hold`` if given."""
    outcome = Results()
    for m in measurements:
        if hold is not None and isinstance(m.error, PASSING_ERRORS):
            accounts = pending.pop(m.remote_id, [])
            if accounts:
                hold[m.remote_id] = (accounts, m.error)
            continue
        for account in pending.pop(m.remote_id, []):
            if m.snapshot is not None:
                snap = m.snapshot
                if snap.suspended:
                    # Suspended accounts are served with zeroed counts: not a true sample.
                    outcome.changes.append(
                        AccountStateChange(account.id, AccountState.SUSPENDED, m.taken_at)
                    )
                    continue
                outcome.samples.append(
                    NewSample(
                        account.id,
                        m.taken_at,
                        snap.followers,
                        snap.following,
                        snap.statuses,
                        snap.last_status_at,
                    )
                )
                if snap.moved_to:
                    outcome.changes.append(
                        AccountStateChange(
                            account.id, AccountState.MOVED, m.taken_at, snap.moved_to
                        )
                    )
            else:
                error = m.error or FediverseError("no answer")
                if isinstance(error, Halted):
                    continue  # not asked because the round stopped: still due, not failed
                outcome.failures.append(NewFailure(account.id, error.code, str(error), m.taken_at))
                if isinstance(error, AccountNotFound):
                    outcome.changes.append(
                        AccountStateChange(account.id, AccountState.GONE, m.taken_at)
                    )
    return outcome
