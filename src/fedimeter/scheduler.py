"""Runs collection rounds on a schedule inside the long-running server.

The loop is deliberately hard to kill: a failing round, a database that cannot be read, even a
bug in the loop itself is logged, kept in ``last_error``, and followed by the next attempt.
Only cancellation (how the server stops it) ends it.

Each turn reads the start of the newest round in the database and asks the schedule whether a
round is overdue. If so, one runs at once; otherwise the loop sleeps until the schedule's next
time, in slices of at most a minute, re-reading the clock after each slice so that a suspended
machine or a clock set forward is noticed within a minute. Then it looks again: a round started
meanwhile by someone else (the API, a ``fedimeter collect``) counts, so an interval schedule
counts from that round instead of running a second one soon after.

Rounds never overlap and never come in bursts: the loop awaits each round, and a round that
overran one or more fire times is followed by at most one round, at once, because the schedule
only asks whether the newest fire time saw a round start, not how many were missed.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from fedimeter.clock import utc_now
from fedimeter.errors import FedimeterError, RoundInProgress

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from fedimeter.clock import Clock
    from fedimeter.domain.schedule import Schedule

__all__ = ["CLOCK_SKEW", "MAX_SLEEP_SECONDS", "RETRY_SECONDS", "Scheduler"]

#: Longest single sleep: how soon a wall-clock jump or a resumed laptop is noticed.
MAX_SLEEP_SECONDS = 60.0
#: Wait before reading the database again after it failed, or after an unexpected error.
RETRY_SECONDS = 60.0
#: Round starts up to this far ahead of our clock are believed (another machine's clock may run
#: a little fast); later ones mean a clock was wrong when they were written, and are ignored.
CLOCK_SKEW = timedelta(minutes=5)

_LOG = logging.getLogger("fedimeter.scheduler")


class Scheduler:
    """Starts a collection round whenever the schedule says one is due.

    Attributes:
        schedule: when rounds are due.
        next_run: when the next round will start (UTC); None while a round runs, before the
            first look at the database, and after the loop ended.
        running: whether a round started by this scheduler is under way.
    """

    def __init__(
        self,
        schedule: Schedule,
        run_round: Callable[[], Awaitable[object]],
        last_round_start: Callable[[], Awaitable[datetime | None]],
        *,
        clock: Clock = utc_now,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        logger: logging.Logger = _LOG,
    ) -> None:
        """Prepare the loop; nothing runs until ``run`` is awaited.

        Args:
            schedule: when rounds are due.
            run_round: starts a round and returns when it ended; may raise anything.
                ``RoundInProgress`` means a round runs elsewhere and is not an error.
            last_round_start: the start of the newest round in the database (any status), or
                None when there is none.
            clock: the current time, aware UTC.
            sleep: waits so many seconds (tests pass one that moves a fake clock).
            logger: where starts, next times and failures are logged.
        """
        self.schedule = schedule
        self.next_run: datetime | None = None
        self.running = False
        self._run_round = run_round
        self._last_round_start = last_round_start
        self._clock = clock
        self._sleep = sleep
        self._log = logger
        # When this scheduler last started a round. A round that fails before it writes its row
        # leaves no trace in the database; without this, it would be retried in a tight loop.
        self._attempted: datetime | None = None
        self._round_error: str | None = None
        self._read_error: str | None = None
        self._logged_error: tuple[type[BaseException], str] | None = None
        self._ignored_start: datetime | None = None

    @property
    def last_error(self) -> str | None:
        """Why the database cannot be read now, else why the newest failed round failed.

        None once a round has succeeded since (and the database is readable).
        """
        return self._read_error or self._round_error

    async def run(self) -> None:
        """Run rounds on the schedule until cancelled; never returns otherwise.

        Raises:
            asyncio.CancelledError: when cancelled, the way to stop it; a round under way is
                cancelled with it (``collect_round`` records it as interrupted).
        """
        self._log.info("scheduler started: rounds %s", self.schedule.describe())
        try:
            while True:
                try:
                    last_start = await self._newest_start()
                    if await self._sleep_until_due(last_start):
                        continue  # slept: another round may have started meanwhile, look again
                    await self._round()
                except Exception as exc:  # noqa: BLE001 - the loop must outlive its own bugs
                    self._report("the scheduler", exc, logging.ERROR)
                    self._round_error = f"scheduler error: {_describe(exc)}"
                    await self._sleep(RETRY_SECONDS)
        finally:
            self.next_run = None
            self._log.info("scheduler stopped")

    async def _newest_start(self) -> datetime | None:
        """The newest round's start, asking again every ``RETRY_SECONDS`` while that fails."""
        while True:
            try:
                newest = await self._last_round_start()
            except Exception as exc:  # noqa: BLE001 - a database that is briefly down
                self._report("reading the newest round from the database", exc, logging.WARNING)
                self._read_error = f"cannot read the newest round: {_describe(exc)}"
                await self._sleep(RETRY_SECONDS)
                continue
            if self._read_error is not None:
                self._log.info("the database can be read again")
                self._read_error = None
            return newest

    async def _sleep_until_due(self, last_start: datetime | None) -> bool:
        """Sleep until a round is due given ``last_start``; return whether it slept at all."""
        slept = False
        while True:
            now = self._clock()
            newest = self._believable_start(last_start, now)
            if self.schedule.is_overdue(now, newest):
                return slept
            due = self.schedule.next_after(now, newest)
            if due != self.next_run:
                self.next_run = due
                self._log.info("next collection round at %s", f"{due:%Y-%m-%d %H:%M:%S} UTC")
            await self._sleep(min(MAX_SLEEP_SECONDS, (due - now).total_seconds()))
            slept = True

    def _believable_start(self, last_start: datetime | None, now: datetime) -> datetime | None:
        """The newest round start we know of, ignoring starts too far in the future.

        A start more than ``CLOCK_SKEW`` ahead of ``now`` was written while a clock was wrong
        (or ours is now); trusting it would hold rounds back until that time comes, perhaps
        for years. Ignoring it may cost one extra round, which is the better mistake.
        """
        starts = [s for s in (last_start, self._attempted) if s is not None]
        believable = [s for s in starts if s <= now + CLOCK_SKEW]
        ignored = max(set(starts) - set(believable), default=None)
        if ignored is not None and ignored != self._ignored_start:
            self._log.warning(
                "ignoring a round start in the future (%s): a clock was wrong",
                f"{ignored:%Y-%m-%d %H:%M:%S} UTC",
            )
        self._ignored_start = ignored
        return max(believable, default=None)

    async def _round(self) -> None:
        """Run one round, logging how it went; only cancellation of this task escapes."""
        started = self._clock()
        self._attempted = started
        self.next_run = None
        self.running = True
        self._log.info("starting a collection round")
        try:
            await self._run_round()
        except RoundInProgress as exc:
            self._log.info("no round started, another one is running: %s", exc)
        except asyncio.CancelledError as exc:
            if _being_cancelled():
                raise
            # The round cancelled itself (a bug in it), nobody stopped us: a failed round.
            self._round_failed(exc)
        except Exception as exc:  # noqa: BLE001 - any failure of a round must not end the loop
            self._round_failed(exc)
        else:
            self._round_error = None
            self._logged_error = None
            seconds = (self._clock() - started).total_seconds()
            self._log.info("collection round finished in %.1f s", seconds)
        finally:
            self.running = False
        if _being_cancelled():
            # The round swallowed our cancellation; honour it here rather than run forever.
            raise asyncio.CancelledError

    def _round_failed(self, exc: BaseException) -> None:
        self._report("the collection round", exc, logging.ERROR)
        self._round_error = _describe(exc)

    def _report(self, what: str, exc: BaseException, level: int) -> None:
        """Log a failure; a traceback only for unexpected errors, once while they repeat."""
        key = (type(exc), str(exc))
        repeated = key == self._logged_error
        self._logged_error = key
        expected = isinstance(exc, FedimeterError)
        self._log.log(
            level,
            "%s failed%s: %s",
            what,
            " again" if repeated else "",
            _describe(exc),
            exc_info=None if expected or repeated else exc,
        )


def _describe(exc: BaseException) -> str:
    """One line for a person: our errors are sentences already, others get their type."""
    if isinstance(exc, FedimeterError):
        return str(exc) or type(exc).__name__
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _being_cancelled() -> bool:
    """Whether someone asked to cancel the running task (the server stopping the loop)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
