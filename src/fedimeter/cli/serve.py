"""``fedimeter serve``: the API and the scheduler in one process."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from fedimeter.cli.context import fail, run, state
from fedimeter.errors import ConfigError, FedimeterError
from fedimeter.fediverse.netguard import is_loopback_host
from fedimeter.storage.database import Database, describe_url

if TYPE_CHECKING:
    import uvicorn

    from fedimeter.cli.context import CliState

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def setup_logging(level: str) -> None:
    """Log at ``level`` in LOG_FORMAT; the migration tool's chatter only when debugging."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
    if level != "DEBUG":
        logging.getLogger("alembic").setLevel(logging.WARNING)


async def _check_database(url: str) -> None:
    db = await Database.open(url)
    await db.close()


#: glibc's mallopt parameter for the most malloc arenas (malloc.h: M_ARENA_MAX).
_M_ARENA_MAX = -8
#: Arenas the server keeps: glibc's own default is up to 8 per core.
MALLOC_ARENAS = 2


def limit_malloc_arenas(count: int = MALLOC_ARENAS) -> bool:
    """Keep glibc to ``count`` malloc arenas, as ``MALLOC_ARENA_MAX`` would; True if it took.

    The server builds its big answers (reports of every account, ``/metrics``) in one worker
    thread or another; with glibc's default, each thread's arena keeps what such an answer
    used, and the process's memory drifts up by tens of MiB over half an hour of load before
    it levels (docs/reliability.md, Load). Called before any thread starts, so every arena
    made later counts. Nothing is done when ``MALLOC_ARENA_MAX`` is set (the administrator's
    choice stands), off Linux, or where the C library has no ``mallopt`` (musl's ignores it).
    """
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, count))


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    schedule: Annotated[
        bool,
        typer.Option(
            "--schedule/--no-schedule",
            help="Collect on FEDIMETER_SCHEDULE (default daily at 03:00 UTC); --no-schedule"
            " for API-only replicas.",
        ),
    ] = True,
    log_level: Annotated[
        str, typer.Option(help="debug, info, warning or error.", case_sensitive=False)
    ] = "info",
) -> None:
    """Serve the REST API (docs at /docs) and collect on a schedule, until stopped.

    SIGTERM or Ctrl-C stops it cleanly: a round in progress commits what it has measured and
    is resumed by the next one.
    """
    limit_malloc_arenas()
    import uvicorn  # noqa: PLC0415 - only this command needs the server

    from fedimeter.api import create_app  # noqa: PLC0415

    cli = state(ctx)
    settings = cli.settings()
    if settings.api_token is None and not is_loopback_host(host):
        fail(
            ctx,
            ConfigError(
                f"refusing to listen on {host} without an API token: set FEDIMETER_API_TOKEN"
                " (e.g. `openssl rand -hex 32`) or listen on 127.0.0.1"
            ),
        )
    level = log_level.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        fail(
            ctx, ConfigError(f"unknown log level {log_level!r}: use debug, info, warning or error")
        )
    setup_logging(level)
    run(ctx, _check_database(settings.database_url))
    try:
        app = create_app(settings, schedule=schedule)
    except FedimeterError as error:
        fail(ctx, error)
    cli.err.print(
        f"fedimeter serving on http://{host}:{port} (API docs at /docs) with"
        f" {describe_url(settings.database_url)}",
        markup=False,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=level.lower(),
            log_config=None,  # keep our logging format
            server_header=False,
            proxy_headers=False,
        )
    )
    run_until_signal(cli, server)


def run_until_signal(cli: CliState, server: uvicorn.Server) -> None:
    """Run ``server`` until SIGTERM or Ctrl-C, then exit 0 after its clean shutdown.

    Uvicorn shuts down gracefully on SIGTERM/SIGINT and then re-raises the signal with the
    handler it found. Finding ours, the process ends with 0 after a clean shutdown instead of
    dying by the signal, which service managers would report as a failure.

    Raises:
        typer.Exit: code 3 when the server could not start (its port taken, say).
    """
    stopped_by: list[int] = []

    def remember(signum: int, _frame: object) -> None:
        stopped_by.append(signum)

    previous = {sig: signal.signal(sig, remember) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not server.started:
        raise typer.Exit(3)
    if stopped_by:
        cli.err.print(f"stopped by {signal.Signals(stopped_by[0]).name}", markup=False)
