"""``fedimeter graph``: an account's growth as a PNG or SVG file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from fedimeter.cli.context import fail, run, state
from fedimeter.clock import utc_now
from fedimeter.domain.handles import parse_account_ref
from fedimeter.domain.when import parse_period
from fedimeter.errors import FedimeterError, InvalidInput, NotTracked
from fedimeter.graphing import GraphMetric, account_graph, graph_options
from fedimeter.tracking import find_tracked
from fedimeter.wiring import open_repository


def graph(
    ctx: typer.Context,
    handle: Annotated[str, typer.Argument(help="A tracked account: @user@host or profile URL.")],
    metric: Annotated[
        GraphMetric, typer.Option(help="followers, following, statuses, or combined.")
    ] = "followers",
    since: Annotated[
        str | None, typer.Option(help="From (YYYY-MM-DD, ISO datetime, or 30d); default all.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Up to (default now).")] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="File to write, .png or .svg (default ACCOUNT-METRIC.png).",
            dir_okay=False,
        ),
    ] = None,
    theme: Annotated[Literal["light", "dark"], typer.Option(help="light or dark.")] = "light",
    scale: Annotated[float, typer.Option(help="2 for high-density screens.")] = 1.0,
    width: Annotated[int, typer.Option(help="Width in pixels (at scale 1).")] = 1000,
    height: Annotated[int, typer.Option(help="Height in pixels (at scale 1).")] = 500,
) -> None:
    """Draw an account's followers, following or posts over time into a PNG or SVG file."""
    cli = state(ctx)
    settings = cli.settings()
    now = utc_now()
    try:
        ref = parse_account_ref(handle, default_scheme=settings.default_scheme)
        start, end = parse_period(since, until, now)
        path = output or Path(f"{ref.handle.acct.replace(':', '_')}-{metric}.png")
        suffix = path.suffix.lower().lstrip(".")
        if suffix not in {"png", "svg"}:
            raise InvalidInput(f"{path} must end in .png or .svg")
        options = graph_options(suffix, theme, scale, width, height)
    except FedimeterError as exc:
        fail(ctx, exc)

    async def go() -> bytes:
        async with open_repository(settings) as repo:
            account = await find_tracked(repo, ref)
            if account is None:
                raise NotTracked(f"{ref.handle} is not tracked (see: fedimeter track list)")
            return await account_graph(
                repo, account, metric=metric, since=start, until=end, now=now, options=options
            )

    image = run(ctx, go())
    try:
        path.write_bytes(image)
    except OSError as exc:
        fail(ctx, InvalidInput(f"cannot write {path}: {exc.strerror}"))
    cli.out.print(f"wrote {path} ({len(image):,} bytes)", markup=False)
