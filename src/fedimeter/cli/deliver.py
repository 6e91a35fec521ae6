"""Delivery in the CLI: printing what happened to each channel, and ``fedimeter deliveries``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from fedimeter.cli.context import run, state
from fedimeter.cli.options import JsonOption
from fedimeter.cli.render import dumps, when
from fedimeter.storage.deliveries import DeliveryLog
from fedimeter.wiring import open_repository

if TYPE_CHECKING:
    from fedimeter.cli.context import CliState
    from fedimeter.delivery import Outcome
    from fedimeter.storage.deliveries import DeliveryRecord

__all__ = ["deliveries", "outcome_json", "print_outcomes"]

_MARKS = {"delivered": "delivered", "skipped": "skipped", "failed": "FAILED"}


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    """One channel's outcome for ``--json`` output."""
    return {
        "channel": outcome.channel,
        "destination": outcome.destination,
        "status": outcome.status,
        "detail": outcome.detail,
        "url": outcome.url,
    }


def print_outcomes(cli: CliState, outcomes: list[Outcome]) -> bool:
    """One line per channel on stderr (failures) or stdout; return whether any failed."""
    for outcome in outcomes:
        line = f"{outcome.channel}: {_MARKS[outcome.status]}: {outcome.detail}"
        (cli.err if outcome.status == "failed" else cli.out).print(line, markup=False)
    return any(o.status == "failed" for o in outcomes)


def _record_json(record: DeliveryRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "channel": record.channel,
        "destination": record.destination_label,
        "period": {
            "since": record.period_start.isoformat(),
            "until": record.period_end.isoformat(),
        },
        "status": record.status,
        "attempts": record.attempts,
        "posts": len(record.parts) if record.parts is not None else None,
        "posts_sent": record.parts_sent if record.parts is not None else None,
        "url": record.url,
        "error": record.error,
        "created_at": record.created_at.isoformat(),
        "delivered_at": record.delivered_at.isoformat() if record.delivered_at else None,
    }


def deliveries(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Show recent report deliveries: where each report went, and what failed."""
    cli = state(ctx)
    settings = cli.settings()

    async def go() -> list[DeliveryRecord]:
        async with open_repository(settings) as repo:
            return await DeliveryLog(repo.db).recent(limit)

    found = run(ctx, go())
    if as_json:
        cli.out.print(dumps([_record_json(r) for r in found]), markup=False)
        return
    if not found:
        cli.out.print(
            "No report delivered yet. Send one with: fedimeter report --post (or --webhook,"
            " --email)",
            markup=False,
        )
        return
    table = Table(title="Recent deliveries", title_justify="left")
    for name in ("id", "when", "channel", "to", "period", "status", "detail"):
        table.add_column(name, justify="right" if name == "id" else "left")
    for r in found:
        period = f"{r.period_start:%Y-%m-%d} – {r.period_end:%Y-%m-%d}"  # noqa: RUF001
        detail = r.error or r.url or ""
        if r.parts is not None and r.status != "delivered":
            detail = f"{r.parts_sent}/{len(r.parts)} posts sent. {detail}".strip()
        table.add_row(
            str(r.id), when(r.created_at), r.channel, r.destination_label, period, r.status, detail
        )
    cli.out.print(table)
