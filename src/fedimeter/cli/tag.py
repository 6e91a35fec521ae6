"""``fedimeter tag``: hashtags tracked on instances, and instances' trending tags."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.table import Table

from fedimeter.cli.context import exit_code, fail, run, state
from fedimeter.cli.options import (
    HeightOption,
    JsonOption,
    ScaleOption,
    SinceOption,
    ThemeOption,
    WidthOption,
    graph_file,
    graph_look,
    output_option,
    write_graph,
)
from fedimeter.cli.render import dumps, iso, number, when
from fedimeter.clock import utc_now
from fedimeter.domain.when import parse_period
from fedimeter.errors import FedimeterError, NotTracked
from fedimeter.graphing import TagGraphMetric, tag_graph
from fedimeter.storage.tags import TagStore
from fedimeter.tag_tracking import add_tags, add_trends, find_tags, remove_tags, remove_trends
from fedimeter.web.tagview import WEEK_DAYS, DayRow, TagLine, day_rows, tag_lines
from fedimeter.wiring import make_client, open_repository

if TYPE_CHECKING:
    from datetime import datetime

    from fedimeter.storage.records import InstanceRecord
    from fedimeter.storage.tags import TagDayRecord, TagRecord, TrendRecord

app = typer.Typer(
    help="Track hashtags on instances: their daily uses and accounts, and what trends.",
    no_args_is_help=True,
)
trends_app = typer.Typer(
    help="Record an instance's trending hashtags each round.", no_args_is_help=True
)
app.add_typer(trends_app, name="trends")

OnOption = Annotated[
    list[str],
    typer.Option(
        "--on", help="An instance to track it on (host, host:port or URL); repeat for more."
    ),
]


def tag_json(
    tag: TagRecord, done: TagDayRecord | None = None, going: TagDayRecord | None = None
) -> dict[str, Any]:
    """A tag with its newest complete day and its day in progress, for ``--json``."""
    return {
        "id": tag.id,
        "name": tag.name,
        "host": tag.host,
        "url": tag.url,
        "added_at": iso(tag.added_at),
        "checked_at": iso(tag.checked_at),
        "consecutive_failures": tag.consecutive_failures,
        "last_error": tag.last_error,
        "last_complete_day": None if done is None else day_json(done),
        "day_in_progress": None if going is None else day_json(going),
    }


def day_json(day: TagDayRecord) -> dict[str, Any]:
    """One day of a tag's history, for ``--json``."""
    return {
        "day": day.day.isoformat(),
        "uses": day.uses,
        "accounts": day.accounts,
        "complete": day.complete,
    }


@app.command("add")
def add(
    ctx: typer.Context,
    names: Annotated[list[str], typer.Argument(help="Hashtags, with or without #.")],
    on: OnOption,
    as_json: JsonOption = False,
) -> None:
    """Track hashtags on instances: each is read at once, and its last 7 days are stored."""
    cli = state(ctx)
    settings = cli.settings()

    async def go() -> list[Any]:
        async with open_repository(settings) as repo, make_client(settings) as client:
            return await add_tags(
                TagStore(repo.db), client, names, on, default_scheme=settings.default_scheme
            )

    outcomes = run(ctx, go())
    code = max((exit_code(o.error) for o in outcomes if o.error is not None), default=0)
    if as_json:
        cli.out.print(
            dumps(
                [
                    {
                        "name": o.name,
                        "host": o.host,
                        "status": o.status,
                        "tag": None if o.tag is None else tag_json(o.tag),
                        "days": o.days,
                        "error": None if o.error is None else str(o.error),
                    }
                    for o in outcomes
                ]
            ),
            markup=False,
        )
        raise typer.Exit(code)
    for outcome in outcomes:
        if outcome.status == "added" and outcome.tag is not None:
            days = "1 day" if outcome.days == 1 else f"{outcome.days} days"
            cli.out.print(f"tracking {outcome.tag.label} ({days} of history)", markup=False)
        elif outcome.error is not None:
            cli.err.print(
                f"error: #{outcome.name} on {outcome.host}: {outcome.error}", markup=False
            )
    raise typer.Exit(code)


@app.command("remove")
def remove(
    ctx: typer.Context,
    names: Annotated[list[str], typer.Argument(help="Hashtags to stop tracking.")],
    on: Annotated[
        list[str] | None,
        typer.Option("--on", help="Only on these instances (default: every one)."),
    ] = None,
) -> None:
    """Stop tracking hashtags, and delete their history."""
    cli = state(ctx)
    settings = cli.settings()

    async def go() -> list[Any]:
        async with open_repository(settings) as repo:
            return await remove_tags(
                TagStore(repo.db), names, on or (), default_scheme=settings.default_scheme
            )

    outcomes = run(ctx, go())
    for outcome in outcomes:
        if outcome.error is not None:
            where = f" on {outcome.host}" if outcome.host else ""
            cli.err.print(f"error: #{outcome.name}{where}: {outcome.error}", markup=False)
        elif outcome.tag is not None:
            days = outcome.days_deleted
            cli.out.print(
                f"stopped tracking {outcome.tag.label}; {days:,} day{'s' * (days != 1)} deleted",
                markup=False,
            )
    raise typer.Exit(max((exit_code(o.error) for o in outcomes if o.error is not None), default=0))


@app.command("list")
def list_(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Tracked hashtags with their newest complete day, today so far, and their state."""
    cli = state(ctx)
    settings = cli.settings()
    today = utc_now().date()

    async def go() -> list[TagLine]:
        async with open_repository(settings) as repo:
            store = TagStore(repo.db)
            latest = await store.latest()
            since = today - timedelta(days=WEEK_DAYS)
            week = await store.histories([t.id for t, _, _ in latest], since=since)
            return tag_lines(latest, week, today)

    lines = run(ctx, go())
    if as_json:
        cli.out.print(dumps([_line_json(line) for line in lines]), markup=False)
        return
    if not lines:
        cli.out.print(
            "No hashtag is tracked. Add one with: fedimeter tag add NAME --on HOST", markup=False
        )
        return
    cli.out.print(_tag_table(lines, cli.out.width))


#: Below this many columns, tables fold into fewer, two-line columns (80 is the classic).
WIDE = 120


def _tag_table(lines: list[TagLine], width: int) -> Table:
    """``tag list``'s table: one line a tag when wide, two when narrow.

    Narrow, the tag, its instance and its state (with the read time) share the first cell,
    one over the other, so nothing is cut at 80 columns: a long cell folds, never ends in
    ``…``.
    """
    table = Table(title="Tracked hashtags", title_justify="left")
    numbers = ("uses", "accounts", "so far", "7 days")
    if width >= WIDE:
        for name in ("tag", "instance", "day", *numbers, "read (UTC)", "state"):
            right = name in numbers
            table.add_column(name, justify="right" if right else "left", overflow="fold")
    else:
        table.box = box.SIMPLE_HEAD
        table.pad_edge = False
        table.leading = 1
        table.add_column("tag, instance, state", overflow="fold", ratio=1)
        table.add_column("day", no_wrap=True)
        for name in numbers:
            table.add_column(name, justify="right", no_wrap=True)
    for line in lines:
        tag, done, going = line.tag, line.done, line.going
        figures = (
            when(done.day if done else None),
            number(done.uses if done else None),
            number(done.accounts if done else None),
            number(going.uses if going else None),
            number(None if line.week is None else line.week.uses),
        )
        if width >= WIDE:
            table.add_row(
                f"#{tag.name}", tag.host, *figures, when(tag.checked_at), _state_text(tag)
            )
        else:
            read = f"read {when(tag.checked_at)} UTC" if tag.checked_at else "not read yet"
            table.add_row(f"#{tag.name}\n{tag.host}\n{_state_text(tag)}; {read}", *figures)
    return table


def _state(tag: TagRecord) -> str:
    return "failing" if tag.consecutive_failures else "ok"


def _state_text(tag: TagRecord) -> str:
    """``ok``, or ``failing (3x): why``: the table's state."""
    if not tag.consecutive_failures:
        return "ok"
    return f"failing ({tag.consecutive_failures}x): {tag.last_error}"


def _line_json(line: TagLine) -> dict[str, Any]:
    """A ``tag list`` row for ``--json``: the tag, its newest days, its week and its state."""
    week = line.week
    return {
        **tag_json(line.tag, line.done, line.going),
        "week": None if week is None else {"uses": week.uses, "days": week.days},
        "state": _state(line.tag),
    }


@app.command("history")
def history(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A tracked hashtag.")],
    on: Annotated[
        str | None, typer.Option("--on", help="The instance (default: every one it is on).")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="From (YYYY-MM-DD, ISO datetime, or 30d); default all.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Up to (default today).")] = None,
    as_json: JsonOption = False,
) -> None:
    """A hashtag's uses and accounts day by day, on each instance it is tracked on."""
    cli = state(ctx)
    settings = cli.settings()
    try:
        start, end = parse_period(since, until, utc_now())
    except FedimeterError as exc:
        fail(ctx, exc)

    async def go() -> list[tuple[TagRecord, list[TagDayRecord]]]:
        async with open_repository(settings) as repo:
            store = TagStore(repo.db)
            found = await find_tags(store, name, on, default_scheme=settings.default_scheme)
            days = await store.histories(
                [t.id for t in found],
                since=None if start is None else start.date(),
                until=None if end is None else end.date(),
            )
            return [(t, days[t.id]) for t in found]

    found = run(ctx, go())
    if as_json:
        cli.out.print(
            dumps(
                [
                    {
                        "name": t.name,
                        "host": t.host,
                        "days": [day_json(d) for d in days],
                        "not_recorded": [
                            row.day.isoformat() for row in _day_rows(days) if not row.recorded
                        ],
                    }
                    for t, days in found
                ]
            ),
            markup=False,
        )
        return
    for tag, days in found:
        table = Table(title=f"{tag.label}: uses a day", title_justify="left")
        for column in ("day", "uses", "accounts", "note"):
            table.add_column(column, justify="left" if column in {"day", "note"} else "right")
        for row in _day_rows(days):
            table.add_row(
                row.day.isoformat(),
                number(row.uses),
                number(row.accounts),
                row.note,
            )
        if not days:
            table.add_row("—", "", "", "no day stored in this period")
        cli.out.print(table)


def _day_rows(days: list[TagDayRecord]) -> list[DayRow]:
    """Every day from the first stored to the last, oldest first; a day never read has no figures.

    Days no answer covered are absent from storage, never zero: as the dashboard's tag page
    does, they are shown as rows "not recorded", so a gap is seen.
    """
    if not days:
        return []
    first, last = days[0].day, days[-1].day
    rows = day_rows(days, first, last, limit=(last - first).days + 1, today=utc_now().date())
    return rows[::-1]


@app.command("graph")
def graph(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A tracked hashtag.")],
    on: Annotated[
        list[str] | None,
        typer.Option("--on", help="Only on these instances (default: every one it is on)."),
    ] = None,
    metric: Annotated[
        TagGraphMetric,
        typer.Option(help="uses or accounts: what a comparison of several instances draws."),
    ] = "uses",
    since: SinceOption = None,
    until: Annotated[str | None, typer.Option(help="Up to (default today).")] = None,
    output: Annotated[Path | None, output_option("NAME-HOST.png, or NAME-METRIC.png")] = None,
    theme: ThemeOption = "light",
    scale: ScaleOption = 1.0,
    width: WidthOption = 1000,
    height: HeightOption = 500,
) -> None:
    """Draw a hashtag a day into a PNG or SVG: uses and accounts, or instances compared."""
    cli = state(ctx)
    settings = cli.settings()
    now = utc_now()
    try:
        start, end = parse_period(since, until, now)
        options = graph_look(output, theme, scale, width, height)
    except FedimeterError as exc:
        fail(ctx, exc)

    async def go() -> tuple[list[TagRecord], bytes]:
        async with open_repository(settings) as repo:
            store = TagStore(repo.db)
            found: list[TagRecord] = []
            places: list[str | None] = list(on) if on else [None]
            for host in places:
                found += await find_tags(store, name, host, default_scheme=settings.default_scheme)
            image = await tag_graph(
                store, found, metric=metric, since=start, until=end, now=now, options=options
            )
            return found, image

    found, image = run(ctx, go())
    place = found[0].host if len(found) == 1 else metric
    path = output or graph_file(f"{found[0].key}-{place}")
    write_graph(ctx, path, image)


@trends_app.command("add")
def trends_add(
    ctx: typer.Context,
    hosts: Annotated[list[str], typer.Argument(help="Instances: host, host:port or URL.")],
) -> None:
    """Record these instances' trending hashtags each round (read once now)."""
    cli = state(ctx)
    settings = cli.settings()

    async def go() -> list[Any]:
        async with open_repository(settings) as repo, make_client(settings) as client:
            return await add_trends(
                TagStore(repo.db), client, hosts, default_scheme=settings.default_scheme
            )

    changes = run(ctx, go())
    for change in changes:
        if change.error is not None:
            cli.err.print(f"error: {change.host}: {change.error}", markup=False)
            continue
        top = ", ".join(f"#{t.name}" for t in change.trending[:5]) or "none trending now"
        verb = "recording" if change.status == "added" else "already recording"
        cli.out.print(f"{verb} the trending hashtags of {change.host} ({top})", markup=False)
    raise typer.Exit(max((exit_code(c.error) for c in changes if c.error is not None), default=0))


@trends_app.command("remove")
def trends_remove(
    ctx: typer.Context,
    hosts: Annotated[list[str], typer.Argument(help="Instances to stop recording.")],
) -> None:
    """Stop recording these instances' trending hashtags (what was recorded stays)."""
    cli = state(ctx)
    settings = cli.settings()

    async def go() -> list[Any]:
        async with open_repository(settings) as repo:
            return await remove_trends(
                TagStore(repo.db), hosts, default_scheme=settings.default_scheme
            )

    changes = run(ctx, go())
    code = 0
    for change in changes:
        if change.error is not None:
            cli.err.print(f"error: {change.host}: {change.error}", markup=False)
            code = max(code, exit_code(change.error))
        elif change.status == "not_recorded":
            error = NotTracked(f"the trending hashtags of {change.host} are not recorded")
            cli.err.print(f"error: {error}", markup=False)
            code = max(code, exit_code(error))
        else:
            cli.out.print(f"stopped recording the trending hashtags of {change.host}", markup=False)
    raise typer.Exit(code)


@trends_app.command("show")
def trends_show(
    ctx: typer.Context,
    hosts: Annotated[
        list[str] | None, typer.Argument(help="Instances (default: every one recorded).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """The newest recorded trending hashtags of each instance, in order."""
    cli = state(ctx)
    settings = cli.settings()

    async def go() -> list[tuple[str, InstanceRecord | None, list[TrendRecord]]]:
        async with open_repository(settings) as repo:
            store = TagStore(repo.db)
            recorded = await store.trend_instances()
            wanted = {h.lower().split("://")[-1].strip("/") for h in hosts or ()}
            unknown = wanted - {host for _, host, _ in recorded}
            if unknown:
                shown = ", ".join(sorted(unknown))
                raise NotTracked(
                    f"the trending hashtags of {shown} are not recorded"
                    " (see: fedimeter tag trends add HOST)"
                )
            known = {i.id: i for i in await repo.list_instances()}
            return [
                (host, known.get(i), await store.latest_trends(i))
                for i, host, _ in recorded
                if not wanted or host in wanted
            ]

    found = run(ctx, go())
    if as_json:
        cli.out.print(
            dumps(
                [
                    {
                        "host": host,
                        "recording_since": iso(_recording_since(instance)),
                        "checked_at": iso(_checked_at(instance)),
                        "taken_at": iso(trends[0].taken_at) if trends else None,
                        "tags": [
                            {
                                "rank": t.rank,
                                "name": t.name,
                                "day": t.day.isoformat(),
                                "uses": t.uses,
                                "accounts": t.accounts,
                            }
                            for t in trends
                        ],
                    }
                    for host, instance, trends in found
                ]
            ),
            markup=False,
        )
        return
    if not found:
        cli.out.print(
            "No instance's trending hashtags are recorded."
            " Start with: fedimeter tag trends add HOST",
            markup=False,
        )
        return
    for host, instance, trends in found:
        checked = _checked_at(instance)
        newest = trends[0].taken_at if trends else None
        if newest is None or (checked is not None and checked > newest):
            # An empty answer stores no list, only when it came (trends_checked_at; before
            # that was kept, recording started with a reading that answered: an empty one).
            empty_at = checked or _recording_since(instance)
            cli.out.print(
                f"Trending on {host}: the server answered an empty list at {when(empty_at)} UTC"
                " (trends turned off there, or nothing trending)"
                + (f"; its last list, of {when(newest)} UTC:" if newest else ""),
                markup=False,
            )
            if newest is None:
                continue
            title = f"Last list on {host}, {when(newest)} UTC"
        else:
            title = f"Trending on {host}, {when(newest)} UTC"
        table = Table(title=title, title_justify="left")
        for column in ("#", "tag", "uses today", "accounts today"):
            table.add_column(column, justify="left" if column == "tag" else "right")
        for t in trends:
            table.add_row(str(t.rank), f"#{t.name}", number(t.uses), number(t.accounts))
        cli.out.print(table)


def _recording_since(instance: InstanceRecord | None) -> datetime | None:
    return None if instance is None else instance.trends_tracked_at


def _checked_at(instance: InstanceRecord | None) -> datetime | None:
    return None if instance is None else instance.trends_checked_at
