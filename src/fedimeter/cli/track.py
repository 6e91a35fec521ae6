"""``fedimeter track``: add, remove, list and import tracked accounts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from fedimeter.cli.context import exit_code, run, state
from fedimeter.cli.engagement import track_engagement
from fedimeter.cli.options import JsonOption
from fedimeter.cli.render import account_json, dumps, number, when
from fedimeter.domain.models import AccountState
from fedimeter.errors import InvalidInput
from fedimeter.tracking import add_accounts, parse_follows_csv, remove_accounts, summarise
from fedimeter.wiring import make_client, open_repository

if TYPE_CHECKING:
    from fedimeter.cli.context import CliState
    from fedimeter.config import Settings
    from fedimeter.storage.records import AccountRecord, SampleRecord
    from fedimeter.tracking import AddOutcome

app = typer.Typer(help="Add, remove, list and import tracked accounts.", no_args_is_help=True)


async def _add(settings: Settings, handles: list[str]) -> list[AddOutcome]:
    async with open_repository(settings) as repo, make_client(settings) as client:
        return await add_accounts(repo, client, handles, default_scheme=settings.default_scheme)


def _report_adds(cli: CliState, outcomes: list[AddOutcome], *, as_json: bool) -> int:
    """Print what happened to each handle; return the exit code."""
    code = 0
    for outcome in outcomes:
        if outcome.error is not None:
            code = max(code, exit_code(outcome.error))
    if as_json:
        cli.out.print(
            dumps(
                [
                    {
                        "input": o.text,
                        "status": o.status,
                        "account": None if o.account is None else account_json(o.account),
                        "error": None if o.error is None else str(o.error),
                        "error_code": None if o.error is None else o.error.code,
                    }
                    for o in outcomes
                ]
            ),
            markup=False,
        )
        return code
    for outcome in outcomes:
        if outcome.account is not None and outcome.error is None:
            verb = "tracking again" if outcome.status == "retracked" else "tracking"
            account = outcome.account
            cli.out.print(
                f"{verb} {account.handle} (id {account.remote_id} on {account.instance_host})",
                markup=False,
            )
        elif outcome.error is not None:
            cli.err.print(f"error: {outcome.text}: {outcome.error}", markup=False)
    return code


@app.command("add")
def add(
    ctx: typer.Context,
    handles: Annotated[
        list[str],
        typer.Argument(help="@user@host, user@host or a profile URL such as https://host/@user."),
    ],
    as_json: JsonOption = False,
) -> None:
    """Track accounts: resolve each on its home server and remember its id there."""
    cli = state(ctx)
    outcomes = run(ctx, _add(cli.settings(), handles))
    raise typer.Exit(_report_adds(cli, outcomes, as_json=as_json))


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            help="Mastodon's follows export (CSV, first column 'Account address') or one handle"
            " per line; '-' reads standard input.",
            allow_dash=True,
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """Track every account in a Mastodon follows export; report how many were added."""
    cli = state(ctx)
    try:
        content = (
            typer.get_text_stream("stdin").read() if str(file) == "-" else file.read_text("utf-8")
        )
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        cli.err.print(f"error: cannot read {file}: {reason}", markup=False)
        raise typer.Exit(2) from None
    try:
        handles = parse_follows_csv(content)
    except InvalidInput as exc:
        cli.err.print(f"error: {file}: {exc}", markup=False)
        raise typer.Exit(2) from None
    outcomes = run(ctx, _add(cli.settings(), handles))
    failed = [o for o in outcomes if o.status == "failed"]
    if as_json:
        _report_adds(cli, outcomes, as_json=True)
    else:
        for outcome in failed:
            cli.err.print(f"error: {outcome.text}: {outcome.error}", markup=False)
        counts = summarise(outcomes)
        cli.out.print(
            f"{len(outcomes)} accounts in {file}: {counts['added']} added,"
            f" {counts['retracked']} tracked again, {counts['already']} already tracked,"
            f" {counts['failed']} failed",
            markup=False,
        )
    raise typer.Exit(1 if failed else 0)


@app.command("remove")
def remove(
    ctx: typer.Context,
    handles: Annotated[list[str], typer.Argument(help="Handles or profile URLs to stop tracking.")],
    purge: Annotated[
        bool, typer.Option("--purge", help="Also delete every sample (cannot be undone).")
    ] = False,
) -> None:
    """Stop tracking accounts; their history is kept unless --purge."""
    cli = state(ctx)
    settings = cli.settings()

    async def go() -> list:  # type: ignore[type-arg]
        async with open_repository(settings) as repo:
            return await remove_accounts(
                repo, handles, purge=purge, default_scheme=settings.default_scheme
            )

    code = 0
    for outcome in run(ctx, go()):
        if outcome.error is not None:
            cli.err.print(f"error: {outcome.text}: {outcome.error}", markup=False)
            code = max(code, exit_code(outcome.error))
        elif purge:
            cli.out.print(
                f"removed {outcome.account.handle} and its {outcome.samples_deleted} samples",
                markup=False,
            )
        else:
            cli.out.print(f"stopped tracking {outcome.account.handle} (history kept)", markup=False)
    raise typer.Exit(code)


def _state_text(account: AccountRecord) -> str:
    if account.state is AccountState.MOVED and account.moved_to:
        return f"moved to @{account.moved_to}"
    if account.state is AccountState.ACTIVE and account.last_error:
        return f"failing: {account.last_error}"
    return account.state.value if account.state is not AccountState.ACTIVE else "ok"


@app.command("list")
def list_(
    ctx: typer.Context,
    include_removed: Annotated[
        bool, typer.Option("--all", help="Include removed accounts whose history is kept.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """List tracked accounts with their latest counts and state."""
    cli = state(ctx)
    settings = cli.settings()

    async def go() -> list[tuple[AccountRecord, SampleRecord | None]]:
        async with open_repository(settings) as repo:
            return await repo.list_accounts(states=list(AccountState) if include_removed else None)

    rows = run(ctx, go())
    if as_json:
        cli.out.print(dumps([account_json(a, s) for a, s in rows]), markup=False)
        return
    if not rows:
        cli.out.print(
            "No accounts tracked yet. Add one with: fedimeter track add @user@host", markup=False
        )
        return
    table = Table(title=f"{len(rows)} tracked accounts", title_justify="left")
    for name, justify in [
        ("account", "left"),
        ("followers", "right"),
        ("following", "right"),
        ("posts", "right"),
        ("last post", "left"),
        ("measured", "left"),
        ("state", "left"),
    ]:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for account, sample in rows:
        table.add_row(
            str(account.handle),
            number(sample.followers if sample else None),
            number(sample.following if sample else None),
            number(sample.statuses if sample else None),
            when(sample.last_status_at if sample else None),
            when(sample.taken_at if sample else None),
            _state_text(account),
        )
    cli.out.print(table)


# Engagement is an option of tracked accounts; its commands live with the rest of it.
app.command("engagement")(track_engagement)
