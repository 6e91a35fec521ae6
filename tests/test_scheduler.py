"""The scheduler loop, on a fake clock: the fake sleep moves the clock, nothing really waits."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from fedimeter.domain.schedule import Schedule, parse_schedule
from fedimeter.errors import RoundInProgress, StorageError
from fedimeter.scheduler import MAX_SLEEP_SECONDS, RETRY_SECONDS, Scheduler


def at(day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A UTC time in March 2026 (the 1st is a Sunday)."""
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


class World:
    """A fake clock, a sleep that moves it, and a database that remembers round starts."""

    def __init__(self, now: datetime, until: datetime, *, newest: datetime | None = None) -> None:
        """Start the clock at ``now``; the simulation parks once it passes ``until``."""
        self.now = now
        self.until = until
        self.db_starts: list[datetime] = [] if newest is None else [newest]
        self.rounds: list[datetime] = []  # rounds the scheduler started
        self.sleeps: list[float] = []
        self.durations: list[timedelta] = []  # how long the next rounds take, in order
        self.failures: list[BaseException | None] = []  # what the next rounds raise, in order
        self.read_failures: list[Exception] = []  # what the next database reads raise
        self.writes_row = True  # whether a round leaves its start in the database
        self.on_sleep: Callable[[World], None] | None = None
        self.active = 0
        self.max_active = 0
        self.parked = asyncio.Event()

    def clock(self) -> datetime:
        """The fake current time."""
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Move the clock on, or park once past ``until``."""
        self.sleeps.append(seconds)
        await self._park_at_the_end()
        if self.on_sleep is not None:
            self.on_sleep(self)
        self.now += timedelta(seconds=seconds)
        await asyncio.sleep(0)

    async def _park_at_the_end(self) -> None:
        """Past ``until`` (or after far too many rounds), wait forever for the test to cancel."""
        if self.now >= self.until or len(self.rounds) > 500:
            self.parked.set()
            await asyncio.Event().wait()

    async def run_round(self) -> None:
        """A round: record its start, take its time, raise what it was told to raise."""
        await self._park_at_the_end()
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        self.rounds.append(self.now)
        if self.writes_row:
            self.db_starts.append(self.now)
        try:
            await asyncio.sleep(0)
            if self.durations:
                self.now += self.durations.pop(0)
            failure = self.failures.pop(0) if self.failures else None
            if failure is not None:
                raise failure
        finally:
            self.active -= 1

    async def last_round_start(self) -> datetime | None:
        """The newest start in the fake database."""
        await asyncio.sleep(0)
        if self.read_failures:
            raise self.read_failures.pop(0)
        return max(self.db_starts, default=None)

    def scheduler(self, schedule: str | Schedule) -> Scheduler:
        """A scheduler wired to this world."""
        return Scheduler(
            parse_schedule(schedule) if isinstance(schedule, str) else schedule,
            self.run_round,
            self.last_round_start,
            clock=self.clock,
            sleep=self.sleep,
        )


async def simulate(world: World, scheduler: Scheduler) -> None:
    """Run the loop until the world reaches its end, then cancel it and check it stopped."""
    loop = asyncio.create_task(scheduler.run())
    parked = asyncio.create_task(world.parked.wait())
    done, _ = await asyncio.wait({loop, parked}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
    parked.cancel()
    if loop in done:
        loop.result()  # raises what ended it
        pytest.fail("the scheduler loop returned by itself")
    assert parked in done, "the simulated time never reached its end"
    loop.cancel()
    with pytest.raises(asyncio.CancelledError):
        await loop
    assert all(0 < s <= MAX_SLEEP_SECONDS for s in world.sleeps), max(world.sleeps)
    assert world.max_active <= 1


# ---------------------------------------------------------------------------------------------
# When rounds run


async def test_cron_rounds_run_at_their_times_for_days() -> None:
    """Daily at 03:00 UTC: one round each morning, none at start when today's has run."""
    world = World(at(1, 12), at(5, 12), newest=at(1, 3))
    await simulate(world, world.scheduler("0 3 * * *"))
    assert world.rounds == [at(2, 3), at(3, 3), at(4, 3), at(5, 3)]


async def test_weekday_cron_skips_the_weekend() -> None:
    """'0 9 * * mon-fri' runs Monday to Friday only."""
    world = World(at(1, 12), at(9, 12), newest=at(1, 0))
    await simulate(world, world.scheduler("0 9 * * mon-fri"))
    assert world.rounds == [at(2, 9), at(3, 9), at(4, 9), at(5, 9), at(6, 9), at(9, 9)]


async def test_interval_rounds_count_from_each_start() -> None:
    """Every 6 hours from the last start, however long each round takes."""
    world = World(at(1, 12), at(2, 23), newest=at(1, 10))
    world.durations = [timedelta(minutes=40)] * 10
    await simulate(world, world.scheduler("6h"))
    assert world.rounds == [at(1, 16), at(1, 22), at(2, 4), at(2, 10), at(2, 16), at(2, 22)]


async def test_an_overdue_cron_round_runs_at_start() -> None:
    """Started at noon with no round since yesterday's 03:00: one round at once, then 03:00."""
    world = World(at(2, 12), at(3, 12), newest=at(1, 3))
    await simulate(world, world.scheduler("0 3 * * *"))
    assert world.rounds == [at(2, 12), at(3, 3)]


async def test_the_first_round_ever_runs_at_start() -> None:
    """An empty database means a round is due at once."""
    world = World(at(2, 12), at(2, 20))
    await simulate(world, world.scheduler("6h"))
    assert world.rounds == [at(2, 12), at(2, 18)]


async def test_a_round_that_is_not_overdue_does_not_run_at_start() -> None:
    """Today's 03:00 round ran: nothing happens until tomorrow's."""
    world = World(at(2, 12), at(3, 2, 59), newest=at(2, 3))
    await simulate(world, world.scheduler("0 3 * * *"))
    assert world.rounds == []


# ---------------------------------------------------------------------------------------------
# Long rounds: no overlap, no burst


async def test_a_round_longer_than_the_interval_gives_no_overlap_and_no_burst() -> None:
    """Hourly rounds that take 3.5 h run back to back, one at a time, never two at once."""
    world = World(at(1, 0), at(1, 12), newest=at(1, 0))
    world.durations = [timedelta(hours=3, minutes=30)] * 10
    await simulate(world, world.scheduler("1h"))
    assert world.rounds == [at(1, 1), at(1, 4, 30), at(1, 8), at(1, 11, 30)]
    assert world.max_active == 1


async def test_a_cron_round_overrunning_fire_times_is_followed_by_one_round_only() -> None:
    """A 50-hour round misses two 03:00s: one round at once after it, then back to 03:00."""
    world = World(at(2, 2), at(6, 12), newest=at(1, 3))
    world.durations = [timedelta(hours=50)]
    await simulate(world, world.scheduler("0 3 * * *"))
    assert world.rounds == [at(2, 3), at(4, 5), at(5, 3), at(6, 3)]


async def test_hourly_cron_with_long_rounds_does_not_burst() -> None:
    """Hourly cron, rounds of 2 h 10 min: each starts when the last ends, never several."""
    world = World(at(1, 0, 30), at(1, 8), newest=at(1, 0))
    world.durations = [timedelta(hours=2, minutes=10)] * 10
    await simulate(world, world.scheduler("@hourly"))
    assert world.rounds == [at(1, 1), at(1, 3, 10), at(1, 5, 20), at(1, 7, 30)]


# ---------------------------------------------------------------------------------------------
# Failures do not stop the loop


async def test_a_failing_round_does_not_stop_the_next(caplog: pytest.LogCaptureFixture) -> None:
    """A round that raises is logged and kept in last_error; the next runs on time."""
    world = World(at(1, 12), at(3, 12), newest=at(1, 3))
    world.failures = [RuntimeError("boom")]
    scheduler = world.scheduler("0 3 * * *")
    seen: list[str | None] = []
    world.on_sleep = lambda _w: seen.append(scheduler.last_error)
    with caplog.at_level(logging.INFO, logger="fedimeter.scheduler"):
        await simulate(world, scheduler)
    assert world.rounds == [at(2, 3), at(3, 3)]
    assert "RuntimeError: boom" in seen
    assert scheduler.last_error is None  # the second round succeeded
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 1
    assert "boom" in failures[0].getMessage()
    assert failures[0].exc_info is not None  # a bug's traceback is logged, once


async def test_repeated_failures_log_one_traceback_and_keep_going(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Three rounds failing alike: three error lines, one traceback, and the loop carries on."""
    world = World(at(1, 12), at(4, 12), newest=at(1, 3))
    world.failures = [ValueError("same")] * 3
    scheduler = world.scheduler("0 3 * * *")
    with caplog.at_level(logging.ERROR, logger="fedimeter.scheduler"):
        await simulate(world, scheduler)
    assert world.rounds == [at(2, 3), at(3, 3), at(4, 3)]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 3
    assert [r.exc_info is not None for r in errors] == [True, False, False]
    assert scheduler.last_error == "ValueError: same"


async def test_our_own_errors_are_logged_without_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A StorageError is a sentence for the operator, not a bug: no traceback."""
    world = World(at(1, 12), at(2, 12), newest=at(1, 3))
    world.failures = [StorageError("the database is full")]
    scheduler = world.scheduler("0 3 * * *")
    with caplog.at_level(logging.ERROR, logger="fedimeter.scheduler"):
        await simulate(world, scheduler)
    assert scheduler.last_error == "the database is full"
    (error,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert error.exc_info is None


async def test_a_round_failing_before_it_is_recorded_is_not_retried_in_a_loop() -> None:
    """A round that leaves no row (database refused the start) waits for the next fire time."""
    world = World(at(1, 12), at(3, 12), newest=at(1, 3))
    world.writes_row = False
    world.failures = [StorageError("database unreachable")] * 5
    await simulate(world, world.scheduler("0 3 * * *"))
    assert world.rounds == [at(2, 3), at(3, 3)]


async def test_round_in_progress_is_tolerated(caplog: pytest.LogCaptureFixture) -> None:
    """A round running elsewhere is logged at info, is no error, and the schedule goes on."""
    # The other round started long ago (a slow manual collect): no retry in a tight loop.
    world = World(at(1, 12), at(3, 12), newest=at(1, 3))
    world.writes_row = False
    world.failures = [RoundInProgress("a round is running in host:123")]
    scheduler = world.scheduler("0 3 * * *")
    with caplog.at_level(logging.INFO, logger="fedimeter.scheduler"):
        await simulate(world, scheduler)
    assert world.rounds == [at(2, 3), at(3, 3)]
    assert scheduler.last_error is None
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("a round is running in host:123" in r.getMessage() for r in caplog.records)


async def test_round_in_progress_at_start_waits_for_the_next_time() -> None:
    """Overdue at start but a round runs elsewhere: the next attempt is the next fire time."""
    world = World(at(2, 12), at(3, 12), newest=at(1, 3))
    world.writes_row = False
    world.failures = [RoundInProgress("busy")]
    await simulate(world, world.scheduler("0 3 * * *"))
    assert world.rounds == [at(2, 12), at(3, 3)]


async def test_a_database_that_cannot_be_read_is_retried() -> None:
    """last_round_start failing is reported in last_error and retried every minute."""
    world = World(at(1, 12), at(1, 13), newest=None)
    world.read_failures = [StorageError("database unreachable")] * 3
    scheduler = world.scheduler("6h")
    seen: list[str | None] = []
    world.on_sleep = lambda _w: seen.append(scheduler.last_error)
    await simulate(world, scheduler)
    assert world.sleeps[:3] == [RETRY_SECONDS] * 3
    assert world.rounds == [at(1, 12, 3)]  # the first round, once the database answered
    assert seen[0] == "cannot read the newest round: database unreachable"
    assert scheduler.last_error is None


async def test_a_round_cancelled_from_inside_is_a_failed_round() -> None:
    """A CancelledError the round raised itself (nobody stopped us) does not end the loop."""
    world = World(at(1, 12), at(3, 12), newest=at(1, 3))
    world.failures = [asyncio.CancelledError()]
    scheduler = world.scheduler("0 3 * * *")
    await simulate(world, scheduler)
    assert world.rounds == [at(2, 3), at(3, 3)]


class FlakySchedule:
    """A schedule whose is_overdue raises the first time it is asked (a bug in the loop)."""

    def __init__(self, inner: Schedule) -> None:
        """Wrap ``inner``."""
        self.inner = inner
        self.text = inner.text
        self.raised = False

    def next_after(self, moment: datetime, last_start: datetime | None) -> datetime:
        """As the inner schedule."""
        return self.inner.next_after(moment, last_start)

    def is_overdue(self, now: datetime, last_start: datetime | None) -> bool:
        """Raise once, then as the inner schedule."""
        if not self.raised:
            self.raised = True
            raise ZeroDivisionError("a bug")
        return self.inner.is_overdue(now, last_start)

    def describe(self) -> str:
        """As the inner schedule."""
        return self.inner.describe()


async def test_an_unexpected_error_in_the_loop_does_not_end_it() -> None:
    """Even a bug inside the loop is logged, waited out, and followed by the next rounds."""
    world = World(at(1, 12), at(2, 12), newest=at(1, 3))
    scheduler = world.scheduler(FlakySchedule(parse_schedule("0 3 * * *")))
    await simulate(world, scheduler)
    assert world.sleeps[0] == RETRY_SECONDS
    assert world.rounds == [at(2, 3)]


# ---------------------------------------------------------------------------------------------
# Other rounds, clocks that jump


async def test_a_round_started_elsewhere_resets_an_interval() -> None:
    """A round started by the API at 14:00 moves the next 6-hourly round to 20:00."""
    world = World(at(1, 12), at(1, 23), newest=at(1, 10))

    def api_round(w: World) -> None:
        if w.now == at(1, 14):
            w.db_starts.append(w.now)

    world.on_sleep = api_round
    await simulate(world, world.scheduler("6h"))
    assert world.rounds == [at(1, 20)]


async def test_a_round_started_elsewhere_does_not_cancel_a_cron_time() -> None:
    """Cron times are fixed: a round at 02:00 by the API does not cover 03:00."""
    world = World(at(1, 12), at(2, 12), newest=at(1, 3))

    def api_round(w: World) -> None:
        if w.now == at(2, 2):
            w.db_starts.append(w.now)

    world.on_sleep = api_round
    await simulate(world, world.scheduler("0 3 * * *"))
    assert world.rounds == [at(2, 3)]


async def test_a_suspended_machine_runs_one_round_on_waking() -> None:
    """Asleep for 5 h across two hourly times: one round on waking, then hourly again."""
    world = World(at(1, 0, 30), at(1, 9), newest=at(1, 0))

    def suspend(w: World) -> None:
        if w.now == at(1, 1, 30):
            w.now += timedelta(hours=5)  # this sleep lasts 5 h longer than asked

    world.on_sleep = suspend
    await simulate(world, world.scheduler("@hourly"))
    assert world.rounds == [at(1, 1), at(1, 6, 31), at(1, 7), at(1, 8)]


async def test_a_round_start_far_in_the_future_is_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A start written while a clock ran a year ahead does not hold rounds back for a year."""
    world = World(at(1, 12), at(2, 12), newest=at(1, 12) + timedelta(days=365))
    with caplog.at_level(logging.WARNING, logger="fedimeter.scheduler"):
        await simulate(world, world.scheduler("0 3 * * *"))
    assert world.rounds == [at(1, 12), at(2, 3)]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # said once, not every minute
    assert "in the future" in warnings[0].getMessage()


async def test_a_start_slightly_ahead_is_believed() -> None:
    """Another machine's clock two minutes fast is tolerated: its round counts."""
    world = World(at(1, 12), at(1, 20), newest=at(1, 12, 2))
    await simulate(world, world.scheduler("6h"))
    assert world.rounds == [at(1, 18, 2)]


# ---------------------------------------------------------------------------------------------
# Status, logging, stopping


async def test_next_run_and_running_are_reported() -> None:
    """next_run is the next start while waiting, None during a round; running says so."""
    world = World(at(1, 12), at(2, 12), newest=at(1, 3))
    scheduler = world.scheduler("0 3 * * *")
    during: list[tuple[datetime | None, bool]] = []
    waiting: list[datetime | None] = []
    original = world.run_round

    async def observed_round() -> None:
        during.append((scheduler.next_run, scheduler.running))
        await original()

    scheduler._run_round = observed_round
    world.on_sleep = lambda _w: waiting.append(scheduler.next_run)
    assert scheduler.next_run is None
    await simulate(world, scheduler)
    assert during == [(None, True)]
    assert waiting[0] == at(2, 3)
    assert waiting[-1] == at(3, 3)
    assert scheduler.running is False
    assert scheduler.next_run is None  # the loop has stopped


async def test_round_starts_and_next_times_are_logged_at_info(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each round's start and each next fire time appear once at INFO."""
    world = World(at(1, 12), at(2, 12), newest=at(1, 3))
    with caplog.at_level(logging.INFO, logger="fedimeter.scheduler"):
        await simulate(world, world.scheduler("0 3 * * *"))
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert messages[0] == "scheduler started: rounds every day at 03:00 UTC"
    assert messages.count("next collection round at 2026-03-02 03:00:00 UTC") == 1
    assert messages.count("starting a collection round") == 1
    assert "next collection round at 2026-03-03 03:00:00 UTC" in messages
    assert messages[-1] == "scheduler stopped"


async def test_cancelling_stops_the_loop_while_it_waits() -> None:
    """Cancelling while the loop sleeps (with the real asyncio.sleep) ends it at once."""
    calls = 0

    async def run_round() -> None:
        nonlocal calls
        calls += 1

    async def last_round_start() -> datetime | None:
        return datetime.now(UTC)

    scheduler = Scheduler(parse_schedule("0 3 * * *"), run_round, last_round_start)
    task = asyncio.create_task(scheduler.run())
    for _ in range(5):
        await asyncio.sleep(0)
    assert scheduler.next_run is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=1)
    assert calls == 0
    assert scheduler.next_run is None


async def test_cancelling_stops_a_round_under_way() -> None:
    """Cancelling during a round cancels the round too and ends the loop."""
    started = asyncio.Event()
    round_cancelled = False

    async def run_round() -> None:
        nonlocal round_cancelled
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            round_cancelled = True
            raise

    async def last_round_start() -> datetime | None:
        return None

    scheduler = Scheduler(parse_schedule("6h"), run_round, last_round_start)
    task = asyncio.create_task(scheduler.run())
    await asyncio.wait_for(started.wait(), timeout=1)
    assert scheduler.running
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=1)
    assert round_cancelled
    assert not scheduler.running


async def test_a_round_swallowing_the_cancellation_still_stops_the_loop() -> None:
    """A round that catches our cancel and returns does not keep the loop alive."""
    started = asyncio.Event()

    async def run_round() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            return  # a badly behaved round

    async def last_round_start() -> datetime | None:
        return None

    scheduler = Scheduler(parse_schedule("6h"), run_round, last_round_start)
    task = asyncio.create_task(scheduler.run())
    await asyncio.wait_for(started.wait(), timeout=1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=1)
