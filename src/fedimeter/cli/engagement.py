"""``fedimeter track engagement`` and ``fedimeter engagement``: engagement on, off, and read.

``track engagement HANDLE... [--off]`` chooses the accounts whose timelines each round reads
(it costs requests, so it is never on by default); ``engagement list`` shows them and what
their last reading cost; ``engagement show HANDLE`` gives a period's figures, best posts and
days (or weeks); ``engagement graph HANDLE`` draws them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.table import Table

from fedimeter.cli.context import exit_code, fail, run, state
from fedimeter.cli.options import (
    HeightOption,
    JsonOption,
    ScaleOption,
    ThemeOption,
    UntilOption,
    WidthOption,
    graph_file,
    graph_look,
    output_option,
    write_graph,
)
from fedimeter.cli.render import dumps, iso, number, when
from fedimeter.clock import utc_now
from fedimeter.domain.engagement_report import figures_json, plural
from fedimeter.domain.handles import parse_account_ref
from fedimeter.engagement_tracking import engagement_view, set_engagement
from fedimeter.errors import FedimeterError, NotTracked
from fedimeter.graphing import engagement_graph
from fedimeter.graphs.engagement import EngagementMetric
from fedimeter.reporting import report_period
from fedimeter.storage.engagement import EngagementStore
from fedimeter.tracking import find_tracked
from fedimeter.wiring import open_repository

if TYPE_CHECKING:
    from datetime import datetime

    from fedimeter.domain.engagement import BestPost, EngagementFigures
    from fedimeter.engagement_tracking import EngagementChange, EngagementView
    from fedimeter.storage.engagement import EngagementAccount
    from fedimeter.storage.records import AccountRecord
    from fedimeter.storage.repository import Repository

__all__ = ["app", "track_engagement"]

app = typer.Typer(
    help="Engagement of accounts: what they post and what their posts receive.",
    no_args_is_help=True,
)

HandleArgument = Annotated[
    str, typer.Argument(help="A tracked account: @user@host, user@host or a profile URL.")
]
PeriodOption = Annotated[
    str | None, typer.Option(help="A period ending now (or at --until): 1d, 7d, 30d, 12w.")
]
SinceOption = Annotated[
    str | None, typer.Option(help="From (YYYY-MM-DD, ISO datetime, or 30d); instead of --period.")
]
ByOption = Annotated[Literal["day", "week"], typer.Option(help="Buckets: UTC days or weeks.")]


def track_engagement(
    ctx: typer.Context,
    handles: Annotated[
        list[str], typer.Argument(help="Tracked accounts: @user@host, user@host or profile URLs.")
    ],
    off: Annotated[bool, typer.Option("--off", help="Turn it off instead.")] = False,
    purge: Annotated[
        bool, typer.Option("--purge", help="With --off: also delete the statuses read.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Read these accounts' public posts each round, for their engagement (costs requests).

    Each round then reads each account's timeline back to engagement_days (40 posts a
    request). --off stops it; the figures read so far stay unless --purge.
    """
    cli = state(ctx)
    settings = cli.settings()

    async def go() -> list[EngagementChange]:
        async with open_repository(settings) as repo:
            return await set_engagement(
                repo,
                EngagementStore(repo.db),
                handles,
                on=not off,
                purge=purge,
                default_scheme=settings.default_scheme,
            )

    changes = run(ctx, go())
    code = max((exit_code(c.error) for c in changes if c.error is not None), default=0)
    if as_json:
        cli.out.print(dumps([_change_json(c) for c in changes]), markup=False)
        raise typer.Exit(code)
    for change in changes:
        if change.error is not None or change.account is None:
            cli.err.print(f"error: {change.text}: {change.error}", markup=False)
            continue
        handle = change.account.handle
        text = {
            "on": f"engagement on for {handle}: its posts are read from the next round",
            "already_on": f"engagement was on already for {handle}",
            "off": f"engagement off for {handle}",
            "already_off": f"engagement was not on for {handle}",
        }[change.status]
        if change.status in {"off", "already_off"}:
            deleted = plural(change.statuses_deleted, "status", "statuses")
            text += f" ({deleted} deleted)" if purge else " (figures kept)"
        cli.out.print(text, markup=False)
    raise typer.Exit(code)


def _change_json(change: EngagementChange) -> dict[str, Any]:
    return {
        "input": change.text,
        "status": change.status,
        "handle": None if change.account is None else change.account.handle.acct,
        "account_id": None if change.account is None else change.account.id,
        "statuses_deleted": change.statuses_deleted,
        "error": None if change.error is None else str(change.error),
        "error_code": None if change.error is None else change.error.code,
    }


def _state_json(entry: EngagementAccount) -> dict[str, Any]:
    return {
        "account_id": entry.account.id,
        "handle": entry.account.handle.acct,
        "enabled": entry.enabled,
        "enabled_at": iso(entry.enabled_at),
        "read_at": iso(entry.read_at),
        "covered_since": iso(entry.covered_since),
        "last_requests": entry.last_requests,
        "last_paging_requests": entry.last_paging_requests,
        "last_statuses": entry.last_statuses,
        "consecutive_failures": entry.consecutive_failures,
        "last_error": entry.last_error,
    }


@app.command("list")
def list_(
    ctx: typer.Context,
    include_off: Annotated[
        bool, typer.Option("--all", help="Include accounts turned off whose statuses are kept.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """List the accounts with engagement on, and what their last reading found and cost."""
    cli = state(ctx)
    settings = cli.settings()

    async def go() -> list[EngagementAccount]:
        async with open_repository(settings) as repo:
            return await EngagementStore(repo.db).accounts(enabled=not include_off)

    entries = run(ctx, go())
    if as_json:
        cli.out.print(dumps([_state_json(e) for e in entries]), markup=False)
        return
    if not entries:
        cli.out.print(
            "Engagement is on for no account. Turn it on with:"
            " fedimeter track engagement @user@host",
            markup=False,
        )
        return
    title = f"{plural(len(entries), 'account')} with engagement"
    table = Table(title=title, title_justify="left")
    for name, justify in [
        ("account", "left"),
        ("read", "left"),
        ("statuses", "right"),
        ("requests", "right"),
        ("paging", "right"),
        ("state", "left"),
    ]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for entry in entries:
        condition = "off" if not entry.enabled else "ok"
        if entry.consecutive_failures:
            condition = f"failing: {entry.last_error}"
        table.add_row(
            str(entry.account.handle),
            when(entry.read_at),
            number(entry.last_statuses if entry.read_at else None),
            number(entry.last_requests if entry.read_at else None),
            number(entry.last_paging_requests if entry.read_at else None),
            condition,
        )
    cli.out.print(table)


async def _account(repo: Repository, text: str, default_scheme: str) -> AccountRecord:
    ref = parse_account_ref(text, default_scheme=default_scheme)
    account = await find_tracked(repo, ref)
    if account is None:
        raise NotTracked(f"{ref.handle} is not tracked")
    return account


def _not_on(account: AccountRecord) -> NotTracked:
    """``engagement_view`` names only the id: say the handle, and how to turn it on."""
    return NotTracked(
        f"engagement is not on for {account.handle}"
        f" (turn it on with: fedimeter track engagement {account.handle})"
    )


def _one(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f}"


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}%"


def _replies(count: int) -> str:
    return plural(count, "reply", "replies")


def _best_line(post: BestPost) -> str:
    excerpt = f' "{post.excerpt}"' if post.excerpt else ""
    return (
        f"{plural(post.interactions, 'interaction')} ({plural(post.favourites, 'favourite')},"
        f" {plural(post.boosts, 'boost')}, {_replies(post.replies)})"
        f" {post.created_at:%Y-%m-%d}{excerpt} {post.url or ''}"
    ).rstrip()


def _summary(figures: EngagementFigures) -> list[str]:
    made = f"{plural(figures.posts, 'post')}, {_replies(figures.replies)}"
    lines = [f"{made}, {plural(figures.boosts, 'boost')} made"]
    if figures.own:
        # Averages (1.0, 2.5) keep the plural noun: "1.0 favourites" per post.
        lines.append(
            f"received per post: {_one(figures.favourites_per_post)} favourites,"
            f" {_one(figures.boosts_per_post)} boosts, {_one(figures.replies_per_post)} replies"
            f" ({plural(figures.interactions, 'interaction')} on {plural(figures.own, 'post')})"
        )
        followers = (
            "" if figures.followers is None else f" of {plural(figures.followers, 'follower')}"
        )
        lines.append(f"engagement rate: {_rate(figures.rate)}{followers}")
    return lines


def _print_view(ctx: typer.Context, view: EngagementView) -> None:
    out = state(ctx).out
    figures = view.figures
    out.print(
        f"{view.state.account.handle}: {when(figures.since)} to {when(figures.until)} UTC",
        markup=False,
    )
    for line in _summary(figures):
        out.print(f"  {line}", markup=False)
    notes = []
    if view.partial:
        since = view.state.covered_since
        notes.append("not read yet" if since is None else f"statuses before {when(since)} not read")
    if figures.provisional:
        notes.append("counts still growing (the newest posts are read again next round)")
    if view.state.consecutive_failures:
        notes.append(f"last reading failed: {view.state.last_error}")
    for note in notes:
        out.print(f"  note: {note}", markup=False)
    if figures.best:
        out.print("  best posts:", markup=False)
        for post in figures.best:
            out.print(f"    {_best_line(post)}", markup=False)
    out.print(_bucket_table(view))


def _bucket_table(view: EngagementView) -> Table:
    """Day by day (or weekly); a bucket none of whose time was read says so, not zeros."""
    table = Table(title=f"by {view.by}", title_justify="left")
    for name in ("from", "posts", "replies", "boosts", "per post", "rate", "note"):
        table.add_column(name, justify="left" if name in {"from", "note"} else "right")
    covered = view.state.covered_since
    for bucket in view.buckets:
        read = _coverage(bucket, covered)
        if read == "none":
            # Nothing of it was read: unknown, not zero.
            table.add_row(when(bucket.since), "—", "—", "—", "—", "—", "not read")
            continue
        table.add_row(
            when(bucket.since),
            number(bucket.posts),
            number(bucket.replies),
            number(bucket.boosts),
            _one(bucket.interactions_per_post),
            _rate(bucket.rate),
            "" if read == "all" else f"only from {when(covered)}",
        )
    return table


Coverage = Literal["all", "part", "none"]


def _coverage(bucket: EngagementFigures, covered_since: datetime | None) -> Coverage:
    """How much of a bucket's time was read: every status posted from covered_since on was."""
    if covered_since is None or covered_since >= bucket.until:
        return "none"
    return "all" if covered_since <= bucket.since else "part"


def _bucket_json(bucket: EngagementFigures, covered_since: datetime | None) -> dict[str, Any]:
    read = _coverage(bucket, covered_since)
    return {
        **{k: v for k, v in figures_json(bucket).items() if k != "best"},
        "partial": read != "all",
        "coverage": read,
    }


@app.command("show")
def show(
    ctx: typer.Context,
    handle: HandleArgument,
    period: PeriodOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    by: ByOption = "day",
    top: Annotated[int, typer.Option(min=0, max=100, help="How many best posts.")] = 5,
    as_json: JsonOption = False,
) -> None:
    """Show an account's engagement over a period (default 7d): figures, best posts, days."""
    cli = state(ctx)
    settings = cli.settings()
    try:
        start, end = report_period(utc_now(), period, since, until)
    except FedimeterError as exc:
        fail(ctx, exc)

    async def go() -> EngagementView:
        async with open_repository(settings) as repo:
            account = await _account(repo, handle, settings.default_scheme)
            try:
                return await engagement_view(
                    EngagementStore(repo.db), account.id, since=start, until=end, by=by, top=top
                )
            except NotTracked:
                raise _not_on(account) from None

    view = run(ctx, go())
    if as_json:
        cli.out.print(
            dumps(
                {
                    **_state_json(view.state),
                    "partial": view.partial,
                    "period": figures_json(view.figures),
                    "by": view.by,
                    "buckets": [_bucket_json(b, view.state.covered_since) for b in view.buckets],
                }
            ),
            markup=False,
        )
        return
    _print_view(ctx, view)


@app.command("graph")
def graph(
    ctx: typer.Context,
    handle: HandleArgument,
    metric: Annotated[
        EngagementMetric,
        typer.Option(help="interactions (per post), rate (engagement rate) or activity."),
    ] = "interactions",
    by: ByOption = "day",
    period: PeriodOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    output: Annotated[Path | None, output_option("USER@HOST-engagement-METRIC.png")] = None,
    theme: ThemeOption = "light",
    scale: ScaleOption = 1.0,
    width: WidthOption = 1000,
    height: HeightOption = 500,
) -> None:
    """Draw an account's engagement into a PNG or SVG, a bar (or dot) per day or week."""
    cli = state(ctx)
    settings = cli.settings()
    try:
        start, end = report_period(utc_now(), period, since, until)
        options = graph_look(output, theme, scale, width, height)
    except FedimeterError as exc:
        fail(ctx, exc)

    async def go() -> tuple[str, bytes]:
        async with open_repository(settings) as repo:
            account = await _account(repo, handle, settings.default_scheme)
            store = EngagementStore(repo.db)
            try:
                image = await engagement_graph(
                    store, account.id, metric=metric, by=by, since=start, until=end, options=options
                )
            except NotTracked:
                raise _not_on(account) from None
            return account.handle.acct, image

    acct, image = run(ctx, go())
    path = output or graph_file(f"{acct}-engagement-{metric}")
    write_graph(ctx, path, image)
