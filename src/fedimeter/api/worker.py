"""A second event loop in a thread, with its own engine, for reads that hold a loop for long.

A 30-day report over 10,000 accounts keeps the event loop busy for about 1.5 s in one piece:
SQLAlchemy converts some 300,000 rows and ``build_report`` computes, pure Python between two
awaits. On the server's loop every other request waited that long behind it (the 99th
percentile of the samples route went from 0.1 s to 1.9 s while reports were made,
``bench/api.py``). On this loop they only share the interpreter with it, which hands over
every few milliseconds.

Engines are bound to the loop that uses them, so this loop has its own, opened on the same
database at start-up and closed at shutdown: one more connection pool, not one per request.
An in-memory SQLite database cannot be opened twice; there the work runs on the caller's loop.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import make_url

from fedimeter.storage.database import Database
from fedimeter.storage.repository import Repository

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["ReadWorker"]

_T = TypeVar("_T")


def _in_memory(url: str) -> bool:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return False
    database = parsed.database or ""
    return database in {"", ":memory:"} or parsed.query.get("mode") == "memory"


class ReadWorker:
    """Runs ``work(repository)`` on its own loop and engine; ``start`` before, ``close`` after."""

    def __init__(self, url: str, fallback: Repository) -> None:
        """A worker for the database at ``url``; ``fallback`` is used where it cannot be opened."""
        self._url = url
        self._fallback = fallback
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._db: Database | None = None
        self._repo: Repository | None = None

    async def start(self) -> None:
        """Start the thread and open the database on its loop.

        Raises:
            StorageError: the database cannot be reached.
        """
        if _in_memory(self._url):
            return
        loop = asyncio.new_event_loop()
        thread = threading.Thread(
            target=loop.run_forever, name="fedimeter-read-worker", daemon=True
        )
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            opened = asyncio.run_coroutine_threadsafe(Database.open(self._url, migrate=False), loop)
            self._db = await asyncio.wrap_future(opened)
        except BaseException:
            await self._stop_loop()
            raise
        self._repo = Repository(self._db)

    async def run(self, work: Callable[[Repository], Awaitable[_T]]) -> _T:
        """``work`` on the worker's loop, with its repository; cancelled with the caller."""
        if self._loop is None or self._repo is None:
            return await work(self._fallback)
        repo = self._repo

        async def call() -> _T:
            return await work(repo)

        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(call(), self._loop))

    async def close(self) -> None:
        """Close the database on the worker's loop, then stop the loop and its thread."""
        if self._loop is None:
            return
        if self._db is not None:
            closing = asyncio.run_coroutine_threadsafe(self._db.close(), self._loop)
            await asyncio.wrap_future(closing)
            self._db = self._repo = None
        await self._stop_loop()

    async def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join)
        loop.close()
