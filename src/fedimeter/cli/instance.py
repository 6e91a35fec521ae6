"""``fedimeter instance``: add, remove and list instances tracked for themselves."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from fedimeter.cli.context import exit_code, fail, run, state
from fedimeter.cli.options import (
    HeightOption,
    JsonOption,
    ScaleOption,
    SinceOption,
    ThemeOption,
    UntilOption,
    WidthOption,
    graph_file,
    graph_look,
    output_option,
    write_graph,
)
from fedimeter.cli.render import dumps, number, when
from fedimeter.clock import utc_now
from fedimeter.domain.when import parse_period
from fedimeter.errors import FedimeterError
from fedimeter.graphing import InstanceGraphMetric, instance_graph
from fedimeter.instance_tracking import (
    add_instances,
    find_tracked_instance,
    remove_instances,
    source_problems,
)
from fedimeter.storage.instances import InstanceStore
from fedimeter.wiring import make_client, open_repository

if TYPE_CHECKING:
    from fedimeter.cli.context import CliState
    from fedimeter.domain.instances import InstanceFigures
    from fedimeter.storage.instances import InstanceSampleRecord, WeekRecord
    from fedimeter.storage.records import InstanceRecord

app = typer.Typer(
    help="Add, remove and list instances measured for themselves.", no_args_is_help=True
)


def _figures_json(figures: InstanceFigures) -> dict[str, int | None]:
    return {
        "users": figures.users,
        "statuses": figures.statuses,
        "domains": figures.domains,
        "peers": figures.peers,
        "active_month": figures.active_month,
        "active_halfyear": figures.active_halfyear,
    }


def instance_json(
    instance: InstanceRecord,
    sample: InstanceSampleRecord | None = None,
    week: WeekRecord | None = None,
) -> dict[str, Any]:
    """An instance with its newest sample and newest complete week, for ``--json``."""
    return {
        "id": instance.id,
        "host": instance.host,
        "base_url": instance.base_url,
        "tracked_at": instance.tracked_at.isoformat() if instance.tracked_at else None,
        "latest": None
        if sample is None
        else {
            "taken_at": sample.taken_at.isoformat(),
            "up": sample.up,
            "software": sample.software,
            "version": sample.version,
            **_figures_json(sample.figures),
            "sources": [
                {"source": s.source, "status": s.status, "detail": s.detail} for s in sample.sources
            ],
        },
        "last_complete_week": None
        if week is None
        else {
            "week_start": week.week_start.isoformat(),
            "statuses": week.statuses,
            "logins": week.logins,
            "registrations": week.registrations,
        },
    }


@app.command("add")
def add(
    ctx: typer.Context,
    hosts: Annotated[
        list[str], typer.Argument(help="host, host:port or https://host of each instance.")
    ],
    as_json: JsonOption = False,
) -> None:
    """Track instances: each is measured at once from every source it offers."""
    cli = state(ctx)
    settings = cli.settings()

    async def go() -> list[Any]:
        async with open_repository(settings) as repo, make_client(settings) as client:
            return await add_instances(
                InstanceStore(repo.db), client, hosts, default_scheme=settings.default_scheme
            )

    outcomes = run(ctx, go())
    code = max((exit_code(o.error) for o in outcomes if o.error is not None), default=0)
    if as_json:
        cli.out.print(
            dumps(
                [
                    {
                        "input": o.text,
                        "status": o.status,
                        "instance": None if o.instance is None else instance_json(o.instance),
                        "error": None if o.error is None else str(o.error),
                    }
                    for o in outcomes
                ]
            ),
            markup=False,
        )
        raise typer.Exit(code)
    for outcome in outcomes:
        if outcome.status == "added" and outcome.instance and outcome.measurement:
            m = outcome.measurement
            software = " ".join(p for p in (m.software, m.version) if p) or "unknown software"
            users = m.figures.users
            cli.out.print(
                f"tracking {outcome.instance.host} ({software}"
                + (f", {users:,} users" if users is not None else "")
                + ")",
                markup=False,
            )
        elif outcome.error is not None:
            cli.err.print(f"error: {outcome.text}: {outcome.error}", markup=False)
    raise typer.Exit(code)


@app.command("remove")
def remove(
    ctx: typer.Context,
    hosts: Annotated[list[str], typer.Argument(help="Instances to stop tracking.")],
    purge: Annotated[
        bool, typer.Option("--purge", help="Also delete every sample and week (cannot be undone).")
    ] = False,
) -> None:
    """Stop tracking instances; their history is kept unless --purge."""
    cli = state(ctx)
    settings = cli.settings()

    async def go() -> list[Any]:
        async with open_repository(settings) as repo:
            return await remove_instances(
                InstanceStore(repo.db), hosts, purge=purge, default_scheme=settings.default_scheme
            )

    outcomes = run(ctx, go())
    for outcome in outcomes:
        if outcome.error is not None:
            cli.err.print(f"error: {outcome.text}: {outcome.error}", markup=False)
        elif outcome.instance is not None:
            kept = (
                f"{outcome.samples_deleted:,} samples deleted" if purge else "its history is kept"
            )
            cli.out.print(f"stopped tracking {outcome.instance.host}; {kept}", markup=False)
    raise typer.Exit(max((exit_code(o.error) for o in outcomes if o.error is not None), default=0))


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Tracked instances with their latest figures and the state of each source."""
    cli = state(ctx)
    settings = cli.settings()

    async def go() -> list[Any]:
        async with open_repository(settings) as repo:
            return await InstanceStore(repo.db).latest()

    rows = run(ctx, go())
    if as_json:
        cli.out.print(dumps([instance_json(i, s, w) for i, s, w in rows]), markup=False)
        return
    if not rows:
        cli.out.print(
            "No instance is tracked. Add one with: fedimeter instance add HOST", markup=False
        )
        return
    table = Table(title="Tracked instances", title_justify="left")
    for name in ("instance", "software", "users", "posts", "peers", "active (month)"):
        table.add_column(name, justify="left" if name in {"instance", "software"} else "right")
    for name in ("last week", "measured", "state"):
        table.add_column(name)
    for instance, sample, week in rows:
        if sample is None:
            table.add_row(instance.host, "", "", "", "", "", "", "—", "not measured yet")
            continue
        f = sample.figures
        software = " ".join(p for p in (sample.software, sample.version) if p)
        peers = f.peers if f.peers is not None else f.domains
        last_week = (
            ""
            if week is None
            else f"{week.statuses:,} posts, {week.logins:,} logins, {week.registrations:,} new"
        )
        problems = source_problems(sample.sources)
        condition = "up" if sample.up else "down"
        if problems:
            condition += ": " + ", ".join(f"{s.source} {s.status}" for s in problems)
        table.add_row(
            instance.host,
            software,
            number(f.users),
            number(f.statuses),
            number(peers),
            number(f.active_month),
            last_week,
            when(sample.taken_at),
            condition,
        )
    cli.out.print(table)


@app.command("graph")
def graph(
    ctx: typer.Context,
    host: Annotated[str, typer.Argument(help="A tracked instance: host, host:port or URL.")],
    metric: Annotated[
        InstanceGraphMetric,
        typer.Option(help="users, statuses, or activity (posts, logins, registrations a week)."),
    ] = "users",
    since: SinceOption = None,
    until: UntilOption = None,
    output: Annotated[Path | None, output_option("HOST-METRIC.png")] = None,
    theme: ThemeOption = "light",
    scale: ScaleOption = 1.0,
    width: WidthOption = 1000,
    height: HeightOption = 500,
) -> None:
    """Draw an instance's users, posts or weekly activity over time into a PNG or SVG file."""
    cli = state(ctx)
    settings = cli.settings()
    now = utc_now()
    try:
        start, end = parse_period(since, until, now)
        path = output or graph_file(f"{host.split('://')[-1].strip('/')}-{metric}")
        options = graph_look(path, theme, scale, width, height)
    except FedimeterError as exc:
        fail(ctx, exc)

    async def go() -> bytes:
        async with open_repository(settings) as repo:
            store = InstanceStore(repo.db)
            instance = await find_tracked_instance(
                store, host, default_scheme=settings.default_scheme
            )
            return await instance_graph(
                store, instance, metric=metric, since=start, until=end, now=now, options=options
            )

    image = run(ctx, go())
    write_graph(ctx, path, image)


@app.command("samples")
def samples(
    ctx: typer.Context,
    host: Annotated[str, typer.Argument(help="A tracked instance: host, host:port or URL.")],
    since: Annotated[
        str | None, typer.Option(help="From (YYYY-MM-DD, ISO datetime, or 30d).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Up to (default now).")] = None,
    weeks: Annotated[
        bool, typer.Option("--weeks", help="Show the weekly activity instead of the samples.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Show an instance's measurements (or its weekly activity) over a period."""
    cli = state(ctx)
    settings = cli.settings()
    try:
        start, end = parse_period(since, until, utc_now())
    except FedimeterError as exc:
        fail(ctx, exc)

    async def go() -> tuple[list[Any], list[Any]]:
        async with open_repository(settings) as repo:
            store = InstanceStore(repo.db)
            instance = await find_tracked_instance(
                store, host, default_scheme=settings.default_scheme
            )
            if weeks:
                first = None if start is None else start.date()
                last = None if end is None else end.date()
                return [], await store.weeks(instance.id, first, last)
            return await store.samples(instance.id, start, end), []

    found, found_weeks = run(ctx, go())
    if weeks:
        _print_weeks(cli, found_weeks, as_json=as_json)
        return
    if as_json:
        cli.out.print(
            dumps(
                [
                    {
                        "taken_at": s.taken_at.isoformat(),
                        "up": s.up,
                        "software": s.software,
                        "version": s.version,
                        **_figures_json(s.figures),
                    }
                    for s in found
                ]
            ),
            markup=False,
        )
        return
    table = Table(title=f"Samples of {host}", title_justify="left")
    for name in ("measured", "up", "users", "posts", "peers", "active (month)"):
        table.add_column(name, justify="left" if name in {"measured", "up"} else "right")
    for s in found:
        f = s.figures
        table.add_row(
            when(s.taken_at),
            "yes" if s.up else "no",
            number(f.users),
            number(f.statuses),
            number(f.peers if f.peers is not None else f.domains),
            number(f.active_month),
        )
    cli.out.print(table)


def _print_weeks(cli: CliState, found: list[WeekRecord], *, as_json: bool) -> None:
    if as_json:
        cli.out.print(
            dumps(
                [
                    {
                        "week_start": w.week_start.isoformat(),
                        "statuses": w.statuses,
                        "logins": w.logins,
                        "registrations": w.registrations,
                        "complete": w.complete,
                    }
                    for w in found
                ]
            ),
            markup=False,
        )
        return
    table = Table(title="Weekly activity", title_justify="left")
    for name in ("week from", "posts", "logins", "registrations", "complete"):
        table.add_column(name, justify="left" if name in {"week from", "complete"} else "right")
    for w in found:
        table.add_row(
            w.week_start.isoformat(),
            number(w.statuses),
            number(w.logins),
            number(w.registrations),
            "yes" if w.complete else "in progress",
        )
    cli.out.print(table)
