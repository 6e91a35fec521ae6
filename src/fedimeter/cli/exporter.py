"""``fedimeter exporter``: Prometheus metrics of fediverse instances, with no database."""

from __future__ import annotations

from typing import Annotated

import typer

from fedimeter.cli.context import fail, state
from fedimeter.cli.serve import run_until_signal, setup_logging
from fedimeter.domain.handles import parse_authority
from fedimeter.domain.models import InstanceAddress
from fedimeter.errors import ConfigError, InvalidHandle
from fedimeter.exporter import DEFAULT_CACHE_SECONDS, DEFAULT_PORT, Exporter, create_app
from fedimeter.fediverse.netguard import is_loopback_host

#: The shortest cache: even scraped every second, an instance then gets at most 4 API
#: requests per 5 s, 240 per 5 minutes, under Mastodon's 300.
MIN_CACHE_SECONDS = 5.0


def exporter(
    ctx: typer.Context,
    instances: Annotated[
        list[str],
        typer.Option(
            "--instance",
            "-i",
            help="An instance to export: host, host:port or https://host (repeat for more).",
            show_default=False,
        ),
    ],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = DEFAULT_PORT,
    cache_seconds: Annotated[
        float,
        typer.Option(
            min=MIN_CACHE_SECONDS,
            help="Measure each instance at most once in this many seconds, however often"
            " Prometheus scrapes.",
        ),
    ] = DEFAULT_CACHE_SECONDS,
    compat_names: Annotated[
        bool,
        typer.Option(
            "--compat-names",
            help="Also export the Mastodon exporter's names (mastodon_user_count and the"
            " like), labelled by instance.",
        ),
    ] = False,
    log_level: Annotated[
        str, typer.Option(help="debug, info, warning or error.", case_sensitive=False)
    ] = "info",
) -> None:
    """Serve Prometheus metrics of fediverse instances at /metrics, measured as scraped.

    No database: each instance is measured when a scrape finds its measurement older than
    --cache-seconds. SIGTERM or Ctrl-C stops it cleanly with exit code 0.
    """
    import uvicorn  # noqa: PLC0415 - only the servers need it

    cli = state(ctx)
    settings = cli.settings()
    level = log_level.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        fail(
            ctx, ConfigError(f"unknown log level {log_level!r}: use debug, info, warning or error")
        )
    addresses: dict[str, InstanceAddress] = {}
    for text in instances:
        try:
            address = parse_authority(text, settings.default_scheme)
        except InvalidHandle as error:
            fail(ctx, error)
        addresses.setdefault(address.authority, address)
    setup_logging(level)
    service = Exporter(
        settings,
        list(addresses.values()),
        cache_seconds=cache_seconds,
        compat_names=compat_names,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(service, settings),
            host=host,
            port=port,
            log_level=level.lower(),
            log_config=None,  # keep our logging format
            access_log=False,  # a line per scrape would bury the lines about instances
            server_header=False,
            proxy_headers=False,
        )
    )
    cli.err.print(
        f"fedimeter exporter on http://{host}:{port}/metrics for {', '.join(addresses)}"
        f" (each measured at most once per {cache_seconds:g} s)",
        markup=False,
    )
    if settings.read_token is None and not is_loopback_host(host):
        cli.err.print(
            f"warning: anyone who reaches {host}:{port} can read the metrics: set"
            " FEDIMETER_READ_TOKEN or keep the port behind your network policy",
            markup=False,
        )
    run_until_signal(cli, server)
