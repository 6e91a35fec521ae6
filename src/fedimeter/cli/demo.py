"""``fedimeter demo``: see fedimeter work end to end without touching a real server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from fedimeter.cli.context import run, state
from fedimeter.cli.render import number, when
from fedimeter.demo import run_demo

if TYPE_CHECKING:
    from fedimeter.alerting import AlertRun
    from fedimeter.cli.context import CliState
    from fedimeter.collect import RoundResult
    from fedimeter.demo import DemoResult


def _default_database() -> Path:
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "fedimeter" / "demo.sqlite3"


def _delta(first: int, last: int) -> str:
    change = last - first
    return f"{last:,} ({change:+,})" if change else f"{last:,}"


def _accounts_table(result: DemoResult) -> Table:
    table = Table(title="What the demo measured", title_justify="left")
    table.add_column("account")
    table.add_column("samples", justify="right")
    table.add_column("followers", justify="right")
    table.add_column("following", justify="right")
    table.add_column("posts", justify="right")
    table.add_column("last post", no_wrap=True)
    table.add_column("state")
    for account, samples in result.accounts:
        if samples:
            first, last = samples[0], samples[-1]
            cells = [
                _delta(first.followers, last.followers),
                _delta(first.following, last.following),
                _delta(first.statuses, last.statuses),
                when(last.last_status_at),
            ]
        else:
            cells = ["—"] * 4
        table.add_row(str(account.handle), number(len(samples)), *cells, account.state.value)
    return table


def _instances_table(result: DemoResult) -> Table:
    table = Table(title="Instances", title_justify="left")
    for name in ("instance", "software", "users", "posts", "peers", "active this month"):
        table.add_column(name, justify="left" if name in {"instance", "software"} else "right")
    for instance, samples in result.instances:
        up = [s for s in samples if s.up]
        if not up:
            table.add_row(instance.host, "—", "down", "", "", "")
            continue
        first, last = up[0].figures, up[-1].figures
        table.add_row(
            instance.host,
            " ".join(p for p in (instance.software, instance.version) if p) or "—",
            *(
                number(b) if a is None or b is None else _delta(a, b)
                for a, b in (
                    (first.users, last.users),
                    (first.statuses, last.statuses),
                    (first.peers, last.peers),
                    (first.active_month, last.active_month),
                )
            ),
        )
    return table


def _tags_table(result: DemoResult) -> Table:
    host = result.tags[0][0].host if result.tags else ""
    table = Table(
        title=f"Hashtags on {host}, uses a day",
        title_justify="left",
        caption="* the day of the last round, still counting",
        caption_justify="left",
    )
    table.add_column("hashtag", no_wrap=True)
    shown = result.tags[0][1][-7:] if result.tags else []
    for day in shown:
        table.add_column(day.day.strftime("%a %d"), justify="right", no_wrap=True)
    for tag, days in result.tags:
        table.add_row(
            f"#{tag.name}", *(f"{d.uses:,}" + ("" if d.complete else "*") for d in days[-7:])
        )
    return table


def _engagement_line(result: DemoResult) -> str:
    handle, view = result.engagement
    f = view.figures
    per_post = f.interactions_per_post or 0.0
    rate = "" if f.rate is None else f", an engagement rate of {f.rate:.2f}%"
    best = f.best[0] if f.best else None
    return (
        f"Engagement of {handle} over the last 7 days: {f.posts} posts, {f.replies} replies,"
        f" {f.boosts} boosts made; {f.favourites_received:,} favourites,"
        f" {f.boosts_received:,} boosts and {f.replies_received:,} replies received"
        f" ({per_post:.1f} a post{rate})."
        + (
            f" Best post: {best.interactions} interactions, {best.url}."
            if best is not None and best.url
            else ""
        )
    )


def _indented(text: str) -> str:
    return "\n".join(f"  | {line}" for line in text.split("\n"))


def _round_line(day: int, result: RoundResult) -> str:
    r = result.run
    line = (
        f"day {day}: measured {r.accounts_measured} of {r.accounts_planned} accounts"
        f" with {r.requests} requests ({r.retries} retried)"
        + (f", {r.accounts_failed} failed" if r.accounts_failed else "")
    )
    extra = []
    if result.instances:
        extra.append(f"{len(result.instances)} instances")
    if result.tags.measured:
        extra.append(f"{result.tags.measured} hashtags")
    if result.tags.trends:
        extra.append("trends")
    done = result.engagement
    if done.accounts:
        extra.append(
            f"{done.statuses} statuses in {done.requests} request" + "s" * (done.requests != 1)
        )
    return line + (f"; read {', '.join(extra)}" if extra else "")


def _print_day(cli: CliState, day: int, result: RoundResult, alerted: AlertRun) -> None:
    cli.out.print(_round_line(day, result), markup=False)
    for account, new_state in result.state_changes:
        cli.out.print(f"       {account.handle} is now {new_state.value}", markup=False)
    for alert in alerted.fired:
        cli.out.print(f"       alert: {alert.text}", markup=False)
    for outcome in alerted.outcomes:
        if outcome.status == "failed":
            cli.err.print(f"       alerts not posted: {outcome.detail}", markup=False)


def demo(
    ctx: typer.Context,
    days: Annotated[int, typer.Option(min=1, max=3650, help="Simulated days, one round each.")] = 7,
    database: Annotated[
        Path | None,
        typer.Option(
            help="Demo database file, replaced on each run"
            " (default: ~/.local/share/fedimeter/demo.sqlite3).",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Run fedimeter against a simulated fediverse on this machine and show what it measured.

    Nothing leaves the machine, and your own database is not touched.
    """
    cli = state(ctx)
    path = (database or _default_database()).expanduser().absolute()

    def on_round(day: int, result: RoundResult, alerted: AlertRun) -> None:
        _print_day(cli, day, result, alerted)

    cli.out.print("Starting a simulated fediverse on 127.0.0.1 ...", markup=False)
    result = run(ctx, run_demo(path, days=days, on_round=on_round))
    tracked = sum(1 for o in result.added if o.account is not None)
    cli.out.print(
        f"Tracked {tracked} accounts on 4 simulated servers, {len(result.instances)} of the"
        f" servers, {len(result.tags)} hashtags, the trends of one server and the engagement"
        " of one account.",
        markup=False,
    )
    cli.out.print(_accounts_table(result))
    cli.out.print(_instances_table(result))
    cli.out.print(_tags_table(result))
    if result.trends:
        trending = ", ".join(f"#{t.name}" for t in result.trends)
        cli.out.print(f"Trending on {result.tags[0][0].host}: {trending}.", markup=False)
    cli.out.print(_engagement_line(result), markup=False)
    if result.alerts:
        cli.out.print(
            f"{len(result.alerts)} alerts fired, each once, and were posted as they fired"
            " on the simulated mastodon-4.3 server (`fedimeter alerts list` shows them).",
            markup=False,
        )
    posted = result.posted
    if posted.status == "delivered":
        cli.out.print(
            f"\nPosted the report for these {days} days on the simulated mastodon-4.3 server"
            f" ({posted.detail.removeprefix('posted ')}), as `fedimeter report --post` does"
            " for your own account. Its first post:",
            markup=False,
        )
        cli.out.print(_indented(result.thread[0]), markup=False)
    else:
        cli.err.print(f"\nPosting the report failed: {posted.detail}", markup=False)
    cli.out.print(
        f"\nThe demo database is {path}. Look around with, for example:\n"
        f"  FEDIMETER_DATABASE_URL=sqlite:///{path} fedimeter track list\n"
        f"  FEDIMETER_DATABASE_URL=sqlite:///{path} fedimeter runs\n"
        f"  FEDIMETER_DATABASE_URL=sqlite:///{path} fedimeter report"
        f" --since {result.rounds[0].run.started_at:%Y-%m-%d}"
        f" --until {result.rounds[-1].run.started_at:%Y-%m-%d} --format html > demo.html\n"
        f"  FEDIMETER_DATABASE_URL=sqlite:///{path} fedimeter graph"
        f" {result.accounts[0][0].handle} --metric combined -o demo.png\n"
        f"  FEDIMETER_DATABASE_URL=sqlite:///{path} fedimeter tag history caturday\n"
        f"  FEDIMETER_DATABASE_URL=sqlite:///{path} fedimeter engagement show"
        f" {result.engagement[0]}\n"
        f"  FEDIMETER_DATABASE_URL=sqlite:///{path} fedimeter alerts list\n"
        f"  FEDIMETER_DATABASE_URL=sqlite:///{path} fedimeter serve --no-schedule"
        "   # the dashboard, on http://127.0.0.1:8000",
        markup=False,
    )
