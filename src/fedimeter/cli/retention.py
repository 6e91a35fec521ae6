"""``fedimeter db downsample``: thin old samples now, or count what would go."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from fedimeter.cli.context import fail, run, state
from fedimeter.cli.options import JsonOption
from fedimeter.cli.render import dumps, number, when
from fedimeter.clock import utc_now
from fedimeter.domain.retention import RetentionPolicy
from fedimeter.errors import InvalidInput
from fedimeter.retention import downsample as downsample_samples
from fedimeter.storage.retention import SAMPLE_TABLES
from fedimeter.wiring import open_repository

if TYPE_CHECKING:
    from datetime import datetime

    from fedimeter.config import Settings
    from fedimeter.retention import Downsampled

__all__ = ["downsample"]

_KEPT = {"day": "one a day", "week": "one a week"}


def _table(result: Downsampled) -> Table:
    title = "Samples that would go (dry run)" if result.dry_run else "Samples removed"
    table = Table(title=title, title_justify="left")
    table.add_column("table")
    table.add_column("kept")
    table.add_column("taken before")
    table.add_column("would go" if result.dry_run else "removed", justify="right")
    for step in result.steps:
        table.add_row(step.table, _KEPT[step.period], f"{when(step.before)} UTC", number(step.rows))
    return table


def _json(result: Downsampled) -> dict[str, Any]:
    return {
        "dry_run": result.dry_run,
        "daily_after_days": result.policy.daily_after_days,
        "weekly_after_days": result.policy.weekly_after_days,
        "steps": [
            {
                "table": step.table,
                "period": step.period,
                "before": step.before.isoformat(),
                "rows": step.rows,
            }
            for step in result.steps
        ],
        "removed": {table: result.removed(table) for table in SAMPLE_TABLES},
        "total": result.total,
    }


async def _downsample(
    settings: Settings, policy: RetentionPolicy, now: datetime, *, dry_run: bool
) -> Downsampled:
    async with open_repository(settings) as repo:
        return await downsample_samples(repo.db, policy, now, dry_run=dry_run)


def downsample(
    ctx: typer.Context,
    daily_after: Annotated[
        int | None,
        typer.Option(
            "--daily-after",
            min=1,
            metavar="DAYS",
            help="Keep one sample a day of the days that ended DAYS ago, instead of"
            " retention_daily_after_days (asks first, unless --yes).",
        ),
    ] = None,
    weekly_after: Annotated[
        int | None,
        typer.Option(
            "--weekly-after",
            min=1,
            metavar="DAYS",
            help="Keep one sample a week of the weeks that ended DAYS ago, instead of"
            " retention_weekly_after_days (asks first, unless --yes).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would go per table; remove nothing.")
    ] = False,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes",
            "-y",
            help="Remove without asking when --daily-after or --weekly-after is given.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Thin old samples to one a day (and one a week) as the retention settings say.

    Of each UTC day that ended `retention_daily_after_days` ago (each week, from Monday, that
    ended `retention_weekly_after_days` ago) every account and instance keeps its last sample,
    so reports between whole days measure the same changes. The newest sample is always kept.
    Rounds do this after each round once the settings are set; this command looks at every
    sample. Samples removed cannot be restored: try `--dry-run` first.
    """
    cli = state(ctx)
    settings = cli.settings()
    overridden = daily_after is not None or weekly_after is not None
    try:
        policy = RetentionPolicy(
            daily_after_days=(
                daily_after if daily_after is not None else settings.retention_daily_after_days
            ),
            weekly_after_days=(
                weekly_after if weekly_after is not None else settings.retention_weekly_after_days
            ),
        )
    except InvalidInput as error:
        fail(ctx, error)
    if not policy.active:
        fail(
            ctx,
            InvalidInput(
                "retention is off, so nothing would go: set retention_daily_after_days (see"
                " docs/configuration.md), or give --daily-after DAYS for once"
            ),
        )
    ask = overridden and not dry_run and not yes
    if ask and as_json:
        fail(ctx, InvalidInput("--json does not ask: add --yes to remove, or --dry-run to count"))
    now = utc_now()
    result = run(ctx, _downsample(settings, policy, now, dry_run=dry_run or ask))
    if ask:
        cli.out.print(_table(result))
        if not result.total:
            cli.out.print("Nothing to remove.", markup=False)
            return
        typer.confirm(
            f"Remove these {result.total:,} samples ({policy.describe()})? They cannot be restored",
            abort=True,
        )
        result = run(ctx, _downsample(settings, policy, now, dry_run=False))
    if as_json:
        cli.out.print(dumps(_json(result)), markup=False)
        return
    cli.out.print(f"retention: {policy.describe()}", markup=False)
    cli.out.print(_table(result))
    verb = "would remove" if result.dry_run else "removed"
    cli.out.print(
        f"{verb} {result.removed('account_samples'):,} account samples and"
        f" {result.removed('instance_samples'):,} instance samples",
        markup=False,
    )
