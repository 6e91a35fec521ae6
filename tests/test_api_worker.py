"""The read worker: work on a second event loop in a thread, with its own engine."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, date, datetime

import pytest

from fedimeter.api.worker import ReadWorker
from fedimeter.domain.models import Handle, InstanceAddress, ResolvedAccount
from fedimeter.errors import NotTracked
from fedimeter.storage.database import Database
from fedimeter.storage.records import NewSample, RunProgress
from fedimeter.storage.repository import Repository

T0 = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)


async def test_work_runs_on_its_own_loop_and_thread_over_the_same_database(
    repo: Repository, db: Database
) -> None:
    """The worker reads what the caller's engine wrote, on another thread and loop."""
    resolved = ResolvedAccount(
        handle=Handle("alice", "example.org"),
        home=InstanceAddress("social.example"),
        remote_id="1",
        display_name="alice",
    )
    account = await repo.add_account(resolved, T0)
    run, _ = await repo.start_run(T0, "test", lambda _run: False)
    sample = NewSample(account.id, T0, 10, 5, 100, date(2026, 2, 28))
    await repo.commit_batch(run.id, T0, RunProgress(), samples=[sample])
    worker = ReadWorker(db.url, repo)
    await worker.start()
    seen: list[tuple[Repository, threading.Thread, asyncio.AbstractEventLoop]] = []

    async def work(worker_repo: Repository) -> int:
        seen.append((worker_repo, threading.current_thread(), asyncio.get_running_loop()))
        return len(await worker_repo.samples(account.id))

    try:
        assert await worker.run(work) == 1
        [(worker_repo, thread, loop)] = seen
        assert worker_repo is not repo
        assert worker_repo.db is not db
        assert thread is not threading.current_thread()
        assert loop is not asyncio.get_running_loop()
    finally:
        await worker.close()
    assert not thread.is_alive()
    assert loop.is_closed()
    await worker.close()  # closing twice is harmless


async def test_errors_reach_the_caller(repo: Repository, db: Database) -> None:
    """What the work raises is raised to the caller."""
    worker = ReadWorker(db.url, repo)
    await worker.start()
    try:
        with pytest.raises(NotTracked):
            await worker.run(lambda worker_repo: worker_repo.get_account(12345))
    finally:
        await worker.close()


async def test_cancelling_the_caller_cancels_the_work(repo: Repository, db: Database) -> None:
    """A request that goes away (client disconnected) stops its work on the worker."""
    worker = ReadWorker(db.url, repo)
    await worker.start()
    started = threading.Event()
    cancelled = threading.Event()

    async def forever(_repo: Repository) -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    try:
        task = asyncio.create_task(worker.run(forever))
        await asyncio.to_thread(started.wait, 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await asyncio.to_thread(cancelled.wait, 5)
    finally:
        await worker.close()


@pytest.mark.parametrize(
    "url", ["sqlite+aiosqlite:///:memory:", "sqlite+aiosqlite://", "sqlite:///file:x?mode=memory"]
)
async def test_an_in_memory_database_is_read_on_the_callers_loop(url: str) -> None:
    """A second engine would see another, empty, in-memory database: the caller's is used."""
    db = await Database.open("sqlite+aiosqlite:///:memory:")
    repo = Repository(db)
    worker = ReadWorker(url, repo)
    try:
        await worker.start()

        async def work(worker_repo: Repository) -> bool:
            return worker_repo is repo and threading.current_thread() is threading.main_thread()

        assert await worker.run(work)
    finally:
        await worker.close()
        await db.close()
