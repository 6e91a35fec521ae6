"""Measure many accounts on one host: batch calls where they exist, one call each otherwise.

Every account asked for comes out with either a snapshot or an error, in lists yielded as
each request completes, so the caller can store them batch by batch.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote

from fedimeter.errors import (
    AccessDenied,
    AccountNotFound,
    BadResponse,
    EndpointMissing,
    FediverseError,
    RemoteUnavailable,
)
from fedimeter.fediverse.parse import parse_account, parse_account_list

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable, Sequence
    from datetime import datetime

    from fedimeter.domain.models import AccountSnapshot, InstanceAddress
    from fedimeter.fediverse.http import Fetcher, Reply

__all__ = ["HostMeasurer", "Measurement"]

# Answers that mean "no such route here": the server predates the batch call.
_NO_ROUTE = frozenset({404, 405, 410})
_GONE = frozenset({404, 410})
_UNPROCESSABLE = 422
_TOO_MANY_IDS = re.compile(r"too many|too long|maximum|at most|limit", re.IGNORECASE)
# Batch calls refused or garbled this many times in a row in a pass: the rest go one by one.
_REFUSALS_BEFORE_SINGLES = 2
# Requests that found the host unavailable (after their retries) this many times in a row,
# with no answer in between: the host is down, and the rest of the pass is not sent.
UNAVAILABLE_BEFORE_GIVING_UP = 3


@dataclass(frozen=True, slots=True)
class Measurement:
    """One account's outcome: exactly one of ``snapshot`` and ``error`` is set."""

    remote_id: str
    #: When the answer arrived (the client's clock).
    taken_at: datetime
    snapshot: AccountSnapshot | None
    error: FediverseError | None

    def __post_init__(self) -> None:
        """Refuse a measurement with both or neither of snapshot and error."""
        if (self.snapshot is None) == (self.error is None):
            msg = "a Measurement has exactly one of snapshot and error"
            raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class _Batch:
    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Single:
    remote_id: str


_Job = _Batch | _Single


@dataclass(slots=True)
class _Done:
    measurements: list[Measurement] = field(default_factory=list)
    follow_ups: list[_Job] = field(default_factory=list)


class HostMeasurer:
    """One measuring pass over accounts of one host."""

    def __init__(
        self,
        fetcher: Fetcher,
        address: InstanceAddress,
        *,
        supports_batch: bool | None,
        learn: Callable[[bool], None],
        clock: Callable[[], datetime],
    ) -> None:
        """Measure at ``address``; ``learn`` is told when batch support turns out True/False."""
        self._fetcher = fetcher
        self._address = address
        self._support = supports_batch
        self._learn = learn
        self._clock = clock
        settings = fetcher.settings
        self._batch_size = settings.batch_size
        self._concurrency = settings.per_host_concurrency
        # The pass: jobs waiting, workers running them, measurements not yet yielded.
        self._jobs: deque[_Job] = deque()
        self._workers: set[asyncio.Task[None]] = set()
        self._results: deque[list[Measurement]] = deque()
        self._failures: list[BaseException] = []
        self._wake: asyncio.Future[None] | None = None
        self._batching = True
        self._refusals = 0
        self._unavailable = 0
        self._sink: Callable[[list[Measurement]], None] | None = None

    async def run(self, remote_ids: Sequence[str]) -> AsyncGenerator[list[Measurement], None]:
        """Measure each distinct id once; yield measurements as requests complete.

        With unknown batch support the first batch goes alone, as a probe; the rest follow
        once the probe has shown whether the call exists. A failure of one account becomes
        its ``Measurement.error``; nothing is dropped. Up to ``per_host_concurrency`` workers
        take the jobs in turn, and follow-ups (a batch's missing ids, halves of a batch too
        large) join the queue.

        Raises:
            RuntimeError: a pass is already running on this measurer.
        """
        if self._jobs or self._workers:
            raise RuntimeError("a HostMeasurer makes one pass at a time")
        self._jobs.extend(self._plan(list(dict.fromkeys(remote_ids))))
        self._batching = self._support is not False
        self._refusals = 0
        self._unavailable = 0
        loop = asyncio.get_running_loop()
        try:
            while True:
                if self._failures:
                    raise self._failures[0]
                # While support is unknown every queued job is a batch: one goes as a probe.
                probing = self._support is None and self._batching
                limit = 1 if probing else self._concurrency
                while self._jobs and len(self._workers) < limit:
                    task = loop.create_task(self._worker())
                    self._workers.add(task)
                    task.add_done_callback(self._worker_ended)
                if self._results:
                    yield self._results.popleft()
                    continue
                if not self._workers and not self._jobs:
                    return
                self._wake = loop.create_future()
                try:
                    await self._wake
                finally:
                    self._wake = None
        finally:
            self._jobs.clear()
            for task in self._workers:
                task.cancel()
            await asyncio.gather(*self._workers, return_exceptions=True)

    async def _worker(self) -> None:
        """Run jobs until none is left (long-lived: a task per request cost more CPU)."""
        jobs = self._jobs
        while jobs:
            done = await self._run_job(jobs.popleft())
            jobs.extend(done.follow_ups)
            if self._host_down(done):
                done.measurements += self._give_up(done.measurements[0].error)
            if self._batching and (
                self._support is False or self._refusals >= _REFUSALS_BEFORE_SINGLES
            ):
                self._batching = False
                singles = _as_singles(jobs)
                jobs.clear()
                jobs.extend(singles)
            if done.measurements:
                if self._sink is not None:
                    self._sink(done.measurements)
                else:
                    self._results.append(done.measurements)
                    self._signal()
            if done.follow_ups:
                self._signal()

    def _host_down(self, done: _Done) -> bool:
        """Count requests in a row that found the host unavailable; whether to stop asking."""
        if not done.measurements:
            return False
        if all(isinstance(m.error, RemoteUnavailable) for m in done.measurements):
            self._unavailable += 1
        else:
            self._unavailable = 0
        return self._unavailable >= UNAVAILABLE_BEFORE_GIVING_UP and bool(self._jobs)

    def _give_up(self, error: FediverseError | None) -> list[Measurement]:
        """Every queued account fails with the host's error, unasked: the host is down.

        Requests already in flight finish. The caller may ask again later (the collector
        holds such failures back for another pass over the host).
        """
        ids = [
            i
            for job in self._jobs
            for i in (job.ids if isinstance(job, _Batch) else [job.remote_id])
        ]
        self._jobs.clear()
        reason = RemoteUnavailable(
            f"{error} (not asked: {UNAVAILABLE_BEFORE_GIVING_UP} requests in a row found "
            f"{self._address.authority} unavailable)"
        )
        taken_at = self._clock()
        return [Measurement(remote_id, taken_at, None, reason) for remote_id in ids]

    def _worker_ended(self, task: asyncio.Task[None]) -> None:
        self._workers.discard(task)
        if not task.cancelled():
            error = task.exception()
            if error is not None:
                self._failures.append(error)
        self._signal()

    def _signal(self) -> None:
        """Wake the generator if it waits."""
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def run_into(
        self, remote_ids: Sequence[str], sink: Callable[[list[Measurement]], None]
    ) -> None:
        """Measure as ``run`` does, handing each request's measurements to ``sink`` at once.

        No generator stands between the requests and ``sink``: a round's collector saves a
        wake-up of its own task per answer.

        Raises:
            RuntimeError: a pass is already running on this measurer.
        """
        self._sink = sink
        try:
            async for _ in self.run(remote_ids):  # pragma: no cover - nothing is yielded
                pass
        finally:
            self._sink = None

    def _plan(self, ids: list[str]) -> list[_Job]:
        if self._support is False:
            return [_Single(remote_id) for remote_id in ids]
        size = self._batch_size
        return [_Batch(tuple(ids[start : start + size])) for start in range(0, len(ids), size)]

    def _set_support(self, *, supported: bool) -> None:
        self._support = supported
        self._learn(supported)

    async def _run_job(self, job: _Job) -> _Done:
        if isinstance(job, _Single):
            return _Done(measurements=[await self._single(job.remote_id)])
        return await self._batch(job.ids)

    async def _single(self, remote_id: str) -> Measurement:
        url = f"{self._address.base_url}/api/v1/accounts/{quote(remote_id, safe='')}"
        try:
            reply = await self._fetcher.get_json(url)
            if reply.ok:
                snapshot = parse_account(reply.data, asked=remote_id, host=reply.host)
                return Measurement(remote_id, self._clock(), snapshot, None)
            if reply.status in _GONE:
                raise AccountNotFound(
                    f"{reply.host} says account {remote_id} does not exist ({reply.describe()})"
                )
            raise _unexpected(reply, "the account")
        except FediverseError as exc:
            return Measurement(remote_id, self._clock(), None, exc)

    async def _batch(self, ids: tuple[str, ...]) -> _Done:
        query = "&".join(f"id[]={quote(remote_id, safe='')}" for remote_id in ids)
        url = f"{self._address.base_url}/api/v1/accounts?{query}"
        probing = self._support is None
        try:
            reply = await self._fetcher.get_json(url)
        except (AccessDenied, BadResponse):
            # Refused (401/403) or not JSON (a CDN's check page, a cut-off body): the same
            # server may still answer for one account at a time.
            return self._refused(ids)
        except FediverseError as exc:
            return self._failed(ids, exc)
        if reply.ok:
            if probing and not isinstance(reply.data, list):
                # Some other endpoint lives at this path: no batch call here.
                self._set_support(supported=False)
                return _Done(follow_ups=[_Single(remote_id) for remote_id in ids])
            return self._batch_answer(ids, reply)
        return self._batch_error(ids, reply)

    def _batch_error(self, ids: tuple[str, ...], reply: Reply) -> _Done:
        """What a non-2xx answer to the batch call leads to."""
        if (
            reply.status == _UNPROCESSABLE
            and len(ids) > 1
            and _TOO_MANY_IDS.search(reply.error_text)
        ):
            # The server allows fewer ids per call than we sent: halve and try again.
            half = len(ids) // 2
            return _Done(follow_ups=[_Batch(ids[:half]), _Batch(ids[half:])])
        if reply.status in _NO_ROUTE or reply.status == _UNPROCESSABLE:
            self._set_support(supported=False)
            return _Done(follow_ups=[_Single(remote_id) for remote_id in ids])
        return self._failed(ids, _unexpected(reply, "the accounts"))

    def _batch_answer(self, ids: tuple[str, ...], reply: Reply) -> _Done:
        try:
            found = parse_account_list(reply.data, asked=ids, host=reply.host)
        except BadResponse:
            return self._refused(ids)
        if not found and reply.data:
            # Entries, but none about an asked-for account: not the batch call's answer.
            return self._refused(ids)
        self._set_support(supported=True)
        self._refusals = 0
        taken_at = self._clock()
        done = _Done()
        for remote_id in ids:
            outcome = found.get(remote_id)
            if outcome is None:
                # Missing from a batch answer: gone, suspended-and-hidden, or never there.
                # Asking for it alone tells which.
                done.follow_ups.append(_Single(remote_id))
            elif isinstance(outcome, BadResponse):
                done.measurements.append(Measurement(remote_id, taken_at, None, outcome))
            else:
                done.measurements.append(Measurement(remote_id, taken_at, outcome, None))
        return done

    def _refused(self, ids: tuple[str, ...]) -> _Done:
        """Ask for each id alone; after refusals in a row, stop batching for this pass.

        What the batch call taught is not learned for later rounds: a refusal may be
        passing, and the call, when it works, saves up to 39 requests in 40.
        """
        self._refusals += 1
        return _Done(follow_ups=[_Single(remote_id) for remote_id in ids])

    def _failed(self, ids: tuple[str, ...], error: FediverseError) -> _Done:
        taken_at = self._clock()
        return _Done(measurements=[Measurement(i, taken_at, None, error) for i in ids])


def _unexpected(reply: Reply, what: str) -> FediverseError:
    detail = f": {reply.error_text}" if reply.error_text else ""
    if reply.status in {404, 405}:
        return EndpointMissing(
            f"{reply.host} does not offer {what} endpoint ({reply.describe()}{detail})"
        )
    return BadResponse(f"{reply.host} answered {reply.describe()} for {what}{detail}")


def _as_singles(jobs: deque[_Job]) -> list[_Job]:
    singles: list[_Job] = []
    for job in jobs:
        if isinstance(job, _Batch):
            singles.extend(_Single(remote_id) for remote_id in job.ids)
        else:
            singles.append(job)
    return singles
