"""The FastAPI application: built by ``create_app(settings)``, nothing at import time."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from fastapi import FastAPI

from fedimeter import __version__
from fedimeter.api import compat, health, metrics, v1
from fedimeter.api.bodies import ApiBodyLimit, too_large_handler
from fedimeter.api.errors import install_error_handlers
from fedimeter.api.services import Services
from fedimeter.api.worker import ReadWorker
from fedimeter.clock import Clock, utc_now
from fedimeter.delivery import Deliverer, deliver_safely
from fedimeter.domain.schedule import parse_schedule
from fedimeter.fediverse import FediverseClient
from fedimeter.rounds import RoundManager
from fedimeter.scheduler import Scheduler
from fedimeter.storage.database import Database
from fedimeter.storage.deliveries import DeliveryLog
from fedimeter.storage.repository import Repository
from fedimeter.web.pages import install as install_dashboard

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from datetime import datetime

    from fedimeter.config import Settings

__all__ = ["create_app"]

DESCRIPTION = """
fedimeter measures how fediverse accounts grow. This API tracks accounts, serves their
samples, and starts collection rounds.

**Access.** Calls that change data need `Authorization: Bearer <FEDIMETER_API_TOKEN>`. Reads
are open unless `FEDIMETER_READ_TOKEN` is set. Without an API token the server listens on
127.0.0.1 only and accepts writes from this machine.

**Errors** are JSON, `{"detail": "...", "code": "..."}`, with the status saying what went
wrong: 404 unknown, 409 conflict, 422 invalid input, 502 a fediverse server failed, 503 the
database is unavailable.

The routes under `/api/` without `v1` are those of mastodon-meter, kept for its users' scripts.
"""


def create_app(
    settings: Settings,
    *,
    schedule: bool = True,
    clock: Clock = utc_now,
    client: FediverseClient | None = None,
) -> FastAPI:
    """The fedimeter server as an ASGI app.

    Args:
        settings: everything configurable.
        schedule: run collection rounds on ``settings.schedule`` (off for API-only replicas).
        clock: the time (tests pass a fake one).
        client: the fediverse client to use (default: one built from the settings, closed
            with the app).

    Raises:
        InvalidInput: ``settings.schedule`` is not a schedule.
    """
    plan = parse_schedule(settings.schedule) if schedule else None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = await Database.open(settings.database_url)
        repo = Repository(db)
        reads = ReadWorker(settings.database_url, repo)
        try:
            await reads.start()
        except BaseException:
            await db.close()
            raise
        fedi = client if client is not None else FediverseClient(settings, clock=clock)
        rounds = RoundManager(repo, fedi, settings, clock=clock)
        deliverer = Deliverer(settings, DeliveryLog(db), clock=clock)
        services = Services(settings, db, repo, fedi, rounds, clock, deliverer, reads)
        app.state.services = services
        scheduler_task: asyncio.Task[None] | None = None
        if plan is not None:

            async def last_round_start() -> datetime | None:
                latest = await repo.list_runs(1)
                return latest[0].started_at if latest else None

            async def round_then_deliver() -> None:
                await rounds.run()
                await deliver_safely(settings, repo, deliverer, now=clock())

            services.scheduler = Scheduler(plan, round_then_deliver, last_round_start, clock=clock)
            scheduler_task = asyncio.create_task(
                services.scheduler.run(), name="fedimeter-scheduler"
            )
        try:
            yield
        finally:
            if scheduler_task is not None:
                scheduler_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await scheduler_task
            # A round in progress stops, commits what it has, and is resumed next time.
            await rounds.stop()
            if client is None:
                await fedi.aclose()
            await reads.close()
            await db.close()

    app = FastAPI(
        title="fedimeter",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    install_error_handlers(app)
    # Request bodies under /api/ of at most 1 MiB, counted as they arrive (api/bodies.py).
    app.add_middleware(ApiBodyLimit)
    app.add_exception_handler(413, too_large_handler)
    app.include_router(health.router)
    app.include_router(v1.router)
    app.include_router(compat.router)
    app.include_router(metrics.router)
    install_dashboard(app, settings)
    return app
