"""Running collection rounds inside a long-lived process (the server): one at a time.

The API's "start a round now", mastodon-meter's ``gather-data`` and the scheduler all go
through one ``RoundManager``, so a second request while a round runs gets that round instead
of a parallel one, and stopping the server stops the round cleanly. A round that finished is
followed by the alert check when rules are set (``alerting.alerts_after_round``) and the
retention pass when retention is on (``retention.downsample_after_round``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from fedimeter.alerting import alerts_after_round
from fedimeter.clock import Clock, utc_now
from fedimeter.collect import RoundResult, collect_round
from fedimeter.errors import RoundInProgress
from fedimeter.retention import downsample_after_round

if TYPE_CHECKING:
    from fedimeter.config import Settings
    from fedimeter.fediverse import FediverseClient
    from fedimeter.storage.records import RunRecord
    from fedimeter.storage.repository import Repository

__all__ = ["RoundManager"]

log = logging.getLogger("fedimeter.rounds")


class RoundManager:
    """Starts rounds in the background, never two at once, and stops them cleanly."""

    def __init__(
        self,
        repo: Repository,
        client: FediverseClient,
        settings: Settings,
        *,
        clock: Clock = utc_now,
    ) -> None:
        """Run rounds over ``repo`` with ``client``."""
        self.repo = repo
        self.client = client
        self.settings = settings
        self.clock = clock
        self._task: asyncio.Task[RoundResult] | None = None
        self._started: asyncio.Future[RunRecord] | None = None
        self._stop = asyncio.Event()
        #: The running task's round has ended (what is left: alerts, retention).
        self._collected = False

    @property
    def running(self) -> bool:
        """Whether this process is running a round."""
        return self._task is not None and not self._task.done()

    async def start(self) -> RunRecord:
        """Start a round in the background, or return the one already running.

        A round recorded as ended whose task is still busy (its last queries, alerts,
        retention) is no longer running: it is waited for, and a new round started.

        Returns:
            The run as recorded when it started (a round running in another process is
            returned as the database shows it).

        Raises:
            StorageError: the database refused.
        """
        while self.running:
            assert self._task is not None  # noqa: S101 - running
            assert self._started is not None  # noqa: S101 - set together with the task
            if not self._collected:
                try:
                    run = await asyncio.shield(self._started)
                except RoundInProgress:
                    break  # running in another process: answered below
                if (await self.repo.get_run(run.id)).status == "running":
                    return run
            # Its round has ended; what is left must not be taken for a round running.
            await asyncio.wait([self._task])
        if not self.running:
            loop = asyncio.get_running_loop()
            started: asyncio.Future[RunRecord] = loop.create_future()
            self._collected = False
            self._started = started
            self._task = asyncio.create_task(self._round(started), name="fedimeter-round")
        assert self._started is not None  # noqa: S101 - set together with the task
        try:
            return await asyncio.shield(self._started)
        except RoundInProgress:
            running = await self.repo.running_run()
            if running is None:  # it ended between the two questions
                return await self.start()
            return running

    async def run(self) -> RoundResult:
        """Start a round (or join the running one) and wait for its end.

        Raises:
            RoundInProgress: a round is running in another process.
            StorageError: the database refused.
        """
        if not self.running:
            await self.start()
        assert self._task is not None  # noqa: S101
        return await asyncio.shield(self._task)

    async def stop(self, grace: float = 30.0) -> None:
        """Ask a running round to stop, commit what it has, and wait up to ``grace`` seconds.

        For shutting down: rounds started afterwards stop at once.
        """
        self._stop.set()
        if self._task is not None and not self._task.done():
            with contextlib.suppress(Exception, asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), grace)
            if not self._task.done():
                self._task.cancel()
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await self._task

    async def _round(self, started: asyncio.Future[RunRecord]) -> RoundResult:
        def on_start(run: RunRecord) -> None:
            log.info("round %d started", run.id)
            started.set_result(run)

        try:
            result = await collect_round(
                self.repo,
                self.client,
                self.settings,
                clock=self.clock,
                on_start=on_start,
                stop=self._stop,
            )
        except BaseException as exc:
            if not started.done():
                started.set_exception(exc)
            else:
                log.error("round failed: %s", exc)  # noqa: TRY400 - the message is the point
            raise
        finally:
            self._collected = True
        run = result.run
        log.info(
            "round %d %s: %d measured, %d failed, %d requests",
            run.id,
            run.status,
            run.accounts_measured,
            run.accounts_failed,
            run.requests,
        )
        if run.status == "finished" and not self._stop.is_set():
            # Logged, never raised: alerts that cannot go out wait for the next round.
            await alerts_after_round(self.settings, self.repo.db, clock=self.clock)
            await downsample_after_round(self.settings, self.repo.db, now=self.clock())
        return result
