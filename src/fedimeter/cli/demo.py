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
    cli.out.print(
        f"\nThe demo database is {path}. Look around with, for example:\n"
        f"  FEDIMETER_DATABASE_URL=sqlite:///{path} fedimeter track list\n"
        f"  FEDIMETER_DATABASE_URL=sqlite:///{path} fedimeter runs",
        markup=False,
    )
