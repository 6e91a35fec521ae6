"""``fedimeter db``: schema migrations and where the data lives."""

from __future__ import annotations

import typer

from fedimeter.cli import maintenance, retention
from fedimeter.cli.context import run, state
from fedimeter.storage.database import Database, describe_url

app = typer.Typer(help="Database schema, location, backups and checks.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Apply every pending migration (fedimeter also does this whenever it starts)."""
    cli = state(ctx)
    url = cli.settings().database_url

    async def go() -> str | None:
        db = await Database.open(url)
        try:
            return await db.current_revision()
        finally:
            await db.close()

    revision = run(ctx, go())
    cli.out.print(f"{describe_url(url)} is at revision {revision} (the newest)", markup=False)


@app.command("status")
def status(ctx: typer.Context) -> None:
    """Show the database in use and whether its schema is current."""
    cli = state(ctx)
    url = cli.settings().database_url

    async def go() -> str | None:
        db = await Database.open(url, migrate=False)
        try:
            return await db.current_revision()
        finally:
            await db.close()

    revision = run(ctx, go())
    head = Database.head_revision()
    cli.out.print(f"database: {describe_url(url)}", markup=False)
    if revision == head:
        cli.out.print(f"schema: revision {revision}, current", markup=False)
    else:
        cli.out.print(
            f"schema: revision {revision or 'none'}, newest is {head}: run `fedimeter db upgrade`",
            markup=False,
        )
        raise typer.Exit(1)


app.command("downsample")(retention.downsample)
app.command("backup")(maintenance.backup)
app.command("restore")(maintenance.restore)
app.command("check")(maintenance.check)
