"""``fedimeter samples``: one account's measurements, for people or for other programs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from fedimeter.cli.context import fail, run, state
from fedimeter.cli.options import JsonOption
from fedimeter.cli.render import dumps, number, sample_json, when
from fedimeter.clock import utc_now
from fedimeter.domain.handles import parse_account_ref
from fedimeter.domain.when import parse_period
from fedimeter.errors import FedimeterError, InvalidInput, NotTracked
from fedimeter.sampleformat import samples_csv
from fedimeter.tracking import find_tracked
from fedimeter.wiring import open_repository

if TYPE_CHECKING:
    from fedimeter.storage.records import AccountRecord, SampleRecord


def samples(
    ctx: typer.Context,
    handle: Annotated[str, typer.Argument(help="A tracked account: @user@host or profile URL.")],
    since: Annotated[
        str | None, typer.Option(help="From this date/time (YYYY-MM-DD, ISO datetime, or 30d).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Up to this date/time (a date includes the whole day).")
    ] = None,
    as_json: JsonOption = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
) -> None:
    """Print the samples stored for one account, oldest first."""
    cli = state(ctx)
    if as_json and as_csv:
        fail(ctx, InvalidInput("choose one of --json and --csv"))
    now = utc_now()
    try:
        ref = parse_account_ref(handle, default_scheme=cli.settings().default_scheme)
        start, end = parse_period(since, until, now)
    except FedimeterError as exc:
        fail(ctx, exc)
    settings = cli.settings()

    async def go() -> tuple[AccountRecord, list[SampleRecord]]:
        async with open_repository(settings) as repo:
            account = await find_tracked(repo, ref)
            if account is None:
                raise NotTracked(f"{ref.handle} is not tracked (see: fedimeter track list)")
            return account, await repo.samples(account.id, start, end)

    account, rows = run(ctx, go())
    if as_json:
        cli.out.print(
            dumps({"account": str(account.handle), "samples": [sample_json(s) for s in rows]}),
            markup=False,
        )
    elif as_csv:
        typer.echo(samples_csv(rows), nl=False)
    elif not rows:
        cli.out.print(f"No samples for {account.handle} in that period yet.", markup=False)
    else:
        cli.out.print(_table(account, rows))


def _table(account: AccountRecord, rows: list[SampleRecord]) -> Table:
    table = Table(title=f"{account.handle}: {len(rows)} samples", title_justify="left")
    table.add_column("measured (UTC)")
    table.add_column("followers", justify="right")
    table.add_column("following", justify="right")
    table.add_column("posts", justify="right")
    table.add_column("last post")
    for s in rows:
        table.add_row(
            when(s.taken_at),
            number(s.followers),
            number(s.following),
            number(s.statuses),
            when(s.last_status_at),
        )
    return table
