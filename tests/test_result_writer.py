"""The round's single writer: results are grouped into few transactions, none is lost."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from fedimeter.collect import Results, ResultWriter
from fedimeter.storage.records import NewFailure, NewSample

AT = datetime(2026, 1, 1, tzinfo=UTC)


def _sample(account_id: int) -> Results:
    return Results(samples=[NewSample(account_id, AT, 1, 2, 3, None)])


class _Recorder:
    """A commit that records what it was given and when (on the fake clock)."""

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.batches: list[tuple[float, list[int]]] = []

    async def __call__(self, batch: Results) -> None:
        ids = [s.account_id for s in batch.samples] + [f.account_id for f in batch.failures]
        self.batches.append((self.clock[0], ids))


async def test_results_within_an_interval_share_one_commit() -> None:
    """The first result after a quiet spell is committed at once, the next ones together."""
    clock = [100.0]
    commit = _Recorder(clock)
    writer = ResultWriter(commit, interval=0.2, monotonic=lambda: clock[0])
    task = asyncio.create_task(writer.run())
    writer.queue.put_nowait(_sample(1))
    await asyncio.sleep(0.01)
    for account_id in (2, 3, 4):
        writer.queue.put_nowait(_sample(account_id))
        await asyncio.sleep(0.01)
    assert [ids for _, ids in commit.batches] == [[1]]  # 2-4 wait for the interval
    clock[0] += 0.2  # the interval has passed: the writer's timeout fires on real time
    await asyncio.sleep(0.25)
    assert [ids for _, ids in commit.batches] == [[1], [2, 3, 4]]
    writer.queue.put_nowait(None)
    await asyncio.wait_for(task, 1)
    assert writer.commits == 2
    assert writer.measured == 4


async def test_the_end_of_the_queue_commits_at_once() -> None:
    """``None`` does not wait for the interval: a round ends as soon as it is measured."""
    commit = _Recorder([0.0])
    writer = ResultWriter(commit, interval=3600)
    task = asyncio.create_task(writer.run())
    writer.queue.put_nowait(_sample(1))
    await asyncio.sleep(0.01)
    writer.queue.put_nowait(_sample(2))
    writer.queue.put_nowait(Results(failures=[NewFailure(3, "gone", "gone", AT)]))
    writer.queue.put_nowait(None)
    await asyncio.wait_for(task, 1)
    assert [ids for _, ids in commit.batches] == [[1], [2, 3]]
    assert (writer.measured, writer.failed) == (2, 1)


async def test_many_results_are_committed_without_waiting() -> None:
    """``max_results`` bounds what waits in memory, whatever the interval."""
    commit = _Recorder([0.0])
    writer = ResultWriter(commit, interval=3600, max_results=3)
    task = asyncio.create_task(writer.run())
    writer.queue.put_nowait(_sample(1))
    await asyncio.sleep(0.01)
    for account_id in range(2, 9):
        writer.queue.put_nowait(_sample(account_id))
    await asyncio.sleep(0.01)
    assert [ids for _, ids in commit.batches] == [[1], [2, 3, 4], [5, 6, 7]]
    writer.queue.put_nowait(None)
    await asyncio.wait_for(task, 1)
    assert [ids for _, ids in commit.batches][-1] == [8]
    assert writer.measured == 8


async def test_a_failed_commit_ends_the_writer_with_its_error() -> None:
    """A commit that raises (disk full) ends ``run`` with that error, so the round stops."""

    async def refuse(batch: Results) -> None:
        raise OSError("disk full")

    writer = ResultWriter(refuse, interval=0)
    task = asyncio.create_task(writer.run())
    writer.queue.put_nowait(_sample(1))
    with pytest.raises(OSError, match="disk full"):
        await asyncio.wait_for(task, 1)
