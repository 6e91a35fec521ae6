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
    table.add_column("last post")
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


def _indented(text: str) -> str:
    return "\n".join(f"  | {line}" for line in text.split("\n"))


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

    def on_round(day: int, result: RoundResult) -> None:
        r = result.run
        cli.out.print(
            f"day {day}: measured {r.accounts_measured} of {r.accounts_planned} accounts"
            f" with {r.requests} requests ({r.retries} retried)"
            + (f", {r.accounts_failed} failed" if r.accounts_failed else ""),
            markup=False,
        )
        for account, new_state in result.state_changes:
            cli.out.print(f"       {account.handle} is now {new_state.value}", markup=False)

    cli.out.print("Starting a simulated fediverse on 127.0.0.1 ...", markup=False)
    result = run(ctx, run_demo(path, days=days, on_round=on_round))
    tracked = sum(1 for o in result.added if o.account is not None)
    cli.out.print(f"Tracked {tracked} accounts on 4 simulated servers.", markup=False)
    cli.out.print(_accounts_table(result))
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
        f" {result.accounts[0][0].handle} --metric combined -o demo.png",
        markup=False,
    )
