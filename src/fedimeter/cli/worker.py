"""``fedimeter worker``: share collection rounds with other workers over one PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
from typing import TYPE_CHECKING, Annotated

import typer

from fedimeter.alerting import alerts_after_round
from fedimeter.cli.collecting import summary_table
from fedimeter.cli.context import fail, run, state
from fedimeter.cli.options import JsonOption
from fedimeter.cli.render import dumps, run_json
from fedimeter.cli.serve import setup_logging
from fedimeter.clock import utc_now
from fedimeter.delivery import Deliverer, deliver_safely
from fedimeter.domain.schedule import parse_schedule
from fedimeter.errors import ConfigError, FedimeterError
from fedimeter.retention import downsample_after_round
from fedimeter.storage.database import describe_url
from fedimeter.storage.deliveries import DeliveryLog
from fedimeter.wiring import make_client, open_repository
from fedimeter.worker import Worker, WorkerStats, lease_warning

if TYPE_CHECKING:
    from fedimeter.config import Settings
    from fedimeter.storage.records import RunRecord


def worker(
    ctx: typer.Context,
    once: Annotated[
        bool,
        typer.Option(
            "--once",
            help="Join the shared round under way, or start one now; exit when it is over.",
        ),
    ] = False,
    name: Annotated[
        str | None,
        typer.Option(help="How this worker appears in leases and logs (default hostname:pid)."),
    ] = None,
    log_level: Annotated[
        str, typer.Option(help="debug, info, warning or error.", case_sensitive=False)
    ] = "info",
    as_json: JsonOption = False,
) -> None:
    """Measure shared rounds with other workers, split by host, until stopped (PostgreSQL).

    Start one on each machine against the same FEDIMETER_DATABASE_URL: they plan rounds on
    FEDIMETER_SCHEDULE together and share the hosts through leases; a worker that dies has
    its hosts taken over after FEDIMETER_WORKER_LEASE_SECONDS. SIGTERM or Ctrl-C stops it
    cleanly (exit 0): answers on the wire are kept, unfinished hosts go to the others.
    """
    cli = state(ctx)
    settings = cli.settings()
    level = log_level.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        fail(
            ctx, ConfigError(f"unknown log level {log_level!r}: use debug, info, warning or error")
        )
    setup_logging(level)
    try:
        schedule = parse_schedule(settings.schedule)
    except FedimeterError as error:
        fail(ctx, error)
    cli.err.print(
        f"fedimeter worker on {describe_url(settings.database_url)}: "
        + ("one round" if once else f"rounds {schedule.describe()}"),
        markup=False,
    )

    warning = lease_warning(settings)
    if warning is not None:
        cli.err.print(f"warning: {warning}", markup=False)
    stats = WorkerStats()
    result = run(ctx, _work(settings, stats, name=name, once=once))
    mine = _describe(stats)
    if not once:
        cli.err.print(f"worker stopped; {mine}", markup=False)
    elif result is None:
        cli.err.print(
            f"stopped before the round was over (other workers finish it); {mine}", markup=False
        )
    elif as_json:
        cli.out.print(
            dumps({**run_json(result), "worker": dataclasses.asdict(stats)}), markup=False
        )
    else:
        cli.out.print(summary_table(result))
        cli.err.print(mine, markup=False)


async def _work(
    settings: Settings, stats: WorkerStats, *, name: str | None, once: bool
) -> RunRecord | None:
    """Run the worker until stopped (or its one round is over); SIGTERM/SIGINT stop it."""
    schedule = parse_schedule(settings.schedule)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with open_repository(settings) as repo, make_client(settings) as client:
            deliverer = Deliverer(settings, DeliveryLog(repo.db), clock=utc_now)

            async def after_round(_run: RunRecord) -> None:
                await alerts_after_round(settings, repo.db, clock=utc_now)
                await downsample_after_round(settings, repo.db, now=utc_now())
                if settings.deliver != "off":
                    await deliver_safely(settings, repo, deliverer, now=utc_now())

            work = Worker(repo, client, settings, name=name, stop=stop, on_finished=after_round)
            work.stats = stats
            if once:
                return await work.run_once()
            await work.run(schedule)
            return None
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def _describe(stats: WorkerStats) -> str:
    """What this worker did, in one line."""
    hosts = f"{stats.hosts_done} host" + ("" if stats.hosts_done == 1 else "s")
    text = (
        f"this worker: {stats.accounts_measured} measured and {stats.accounts_failed} failed"
        f" on {hosts}"
    )
    if stats.hosts_taken_over:
        text += f", {stats.hosts_taken_over} of them taken over from a worker that stopped"
    if stats.hosts_lost:
        text += f"; {stats.hosts_lost} lost to another worker"
    return text
