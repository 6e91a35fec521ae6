"""``fedimeter db backup``, ``db restore`` and ``db check``: copies of the data, and its check."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fedimeter.cli.context import EXIT_CODES, run, state
from fedimeter.cli.options import JsonOption
from fedimeter.cli.render import dumps, size, tally
from fedimeter.errors import CheckFailed
from fedimeter.storage.database import describe_url
from fedimeter.storage.maintenance import (
    Problem,
    backup_database,
    check_database,
    restore_database,
    row_counts,
)


def backup(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            help="File to write: a copy of the SQLite database, or a pg_dump archive.",
            show_default=False,
        ),
    ],
    force: Annotated[bool, typer.Option("--force", help="Replace FILE if it exists.")] = False,
) -> None:
    """Write a consistent copy of the database to FILE; safe while fedimeter runs.

    SQLite: SQLite's online backup, checked, then renamed into place (never a half-written
    FILE). PostgreSQL: `pg_dump --format=custom`, which `pg_restore` restores.
    """
    cli = state(ctx)
    url = cli.settings().database_url
    result = run(ctx, backup_database(url, file, force=force))
    if result.counts is None:
        what = "pg_dump's custom format, restored by pg_restore"
    else:
        what = tally(result.counts)
    cli.out.print(
        f"backed up {describe_url(url)} to {result.path} ({size(result.size)}: {what})",
        markup=False,
    )


def restore(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="A backup written by `db backup`.", show_default=False)
    ],
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace a database too damaged to open (stop fedimeter first).",
        ),
    ] = False,
) -> None:
    """Replace the SQLite database by a backup; the replaced file is kept as NAME.TIME.bak.

    The backup is checked like `db check` and brought to the newest schema before anything is
    replaced. Stop fedimeter first: a database another process has open is refused.
    PostgreSQL: restore with `pg_restore` (the command is printed).
    """
    cli = state(ctx)
    url = cli.settings().database_url
    result = run(ctx, restore_database(url, file, force=force))
    cli.out.print(f"restored {file} into {result.path} ({tally(result.counts)})", markup=False)
    if result.upgraded_from is not None:
        cli.out.print(
            f"its schema was brought from revision {result.upgraded_from} to the newest",
            markup=False,
        )
    if result.previous is not None:
        cli.out.print(f"the database it replaced is kept as {result.previous}", markup=False)


def check(
    ctx: typer.Context,
    as_json: JsonOption = False,
) -> None:
    """Check the database: the file's integrity, rows pointing nowhere, schema, values.

    One line per problem, then a summary; exit code 5 when there is any. Reads only: safe
    while fedimeter runs.
    """
    cli = state(ctx)
    url = cli.settings().database_url

    async def go() -> tuple[list[Problem], dict[str, int] | None]:
        problems = await check_database(url)
        return problems, None if problems else await row_counts(url)

    problems, counts = run(ctx, go())
    if as_json:
        payload = {
            "database": describe_url(url),
            "ok": not problems,
            "problems": [{"code": p.code, "message": p.message} for p in problems],
            "counts": counts,
        }
        cli.out.print(dumps(payload), markup=False)
    else:
        for problem in problems:
            cli.out.print(f"problem: {problem}", markup=False)
        if counts is not None:
            cli.out.print(f"{describe_url(url)}: no problems ({tally(counts)})", markup=False)
        else:
            found = "1 problem" if len(problems) == 1 else f"{len(problems)} problems"
            cli.out.print(f"{describe_url(url)}: {found}", markup=False)
    if problems:
        raise typer.Exit(EXIT_CODES[CheckFailed])
