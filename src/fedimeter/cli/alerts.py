"""``fedimeter alerts``: the alerts that fired, and checking the rules now."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.table import Table

from fedimeter.alerting import check_alerts, judge_alerts
from fedimeter.cli.context import run, state
from fedimeter.cli.options import JsonOption
from fedimeter.cli.render import dumps, iso, when
from fedimeter.clock import utc_now
from fedimeter.delivery.alerts import alert_json
from fedimeter.domain.alert_rules import unmatched_only
from fedimeter.storage.alerts import AlertStore
from fedimeter.storage.instances import InstanceStore
from fedimeter.storage.tags import TagStore
from fedimeter.wiring import open_repository

if TYPE_CHECKING:
    from fedimeter.alerting import AlertRun
    from fedimeter.cli.context import CliState
    from fedimeter.config import Settings
    from fedimeter.delivery.alerts import AlertOutcome
    from fedimeter.domain.alert_rules import AlertScope
    from fedimeter.domain.alerts import Occurrence
    from fedimeter.storage.alerts import AlertRecord
    from fedimeter.storage.repository import Repository

__all__ = ["alerts_json", "app", "print_alert_run"]

app = typer.Typer(
    help="Alerts: rules checked after every round (see docs/alerts.md).", no_args_is_help=True
)


_NO_RULES = (
    "No alert rules are configured: add [[alerts]] tables to the settings file, or"
    " FEDIMETER_ALERTS (see docs/alerts.md)."
)


def _record_json(alert: AlertRecord) -> dict[str, Any]:
    return {
        **alert_json(alert),
        "deliveries": [
            {
                "channel": d.channel,
                "status": d.status,
                "attempts": d.attempts,
                "destination": d.destination,
                "url": d.url,
                "error": d.error,
                "delivered_at": iso(d.delivered_at),
            }
            for d in alert.deliveries
        ],
    }


def _outcome_json(outcome: AlertOutcome) -> dict[str, Any]:
    return {
        "channel": outcome.channel,
        "destination": outcome.destination,
        "status": outcome.status,
        "detail": outcome.detail,
        "alerts": outcome.alerts,
        "url": outcome.url,
    }


def alerts_json(result: AlertRun) -> dict[str, Any]:
    """What one check did, for ``--json``: the alerts fired and each channel's outcome."""
    return {
        "fired": [_record_json(a) for a in result.fired],
        "deliveries": [_outcome_json(o) for o in result.outcomes],
        "error": result.error,
    }


def _delivery_state(alert: AlertRecord) -> str:
    if not alert.deliveries:
        return "not delivered (no channel)"
    parts = []
    for d in alert.deliveries:
        text = f"{d.channel} {d.status}"
        if d.status == "failed" and d.error:
            text += f" ({d.error})"
        parts.append(text)
    return "; ".join(parts)


_SUBJECT_NOUNS: dict[AlertScope, str] = {
    "accounts": "account",
    "instances": "instance",
    "tags": "hashtag",
}


async def _tracked_keys(repo: Repository, scope: AlertScope) -> list[str]:
    """The normalised keys of what is tracked in ``scope``, as rules' ``only`` names them."""
    if scope == "accounts":
        return [a.handle.key for a in await repo.list_account_records()]
    if scope == "instances":
        return [i.host for i in await InstanceStore(repo.db).tracked()]
    return [f"{t.key}@{t.host}" for t in await TagStore(repo.db).tracked()]


def _warn_unmatched(ctx: typer.Context, cli: CliState, settings: Settings) -> None:
    """A warning line on stderr for each ``only`` entry of a rule that matches nothing tracked.

    Rules are checked when the settings load, without the database: a typo in ``only`` (or
    a tag not tracked yet) would watch nothing, silently.
    """
    rules = [rule for rule in settings.alerts if rule.only]
    if not rules:
        return

    async def go() -> list[str]:
        async with open_repository(settings) as repo:
            keys = {scope: await _tracked_keys(repo, scope) for scope in {r.scope for r in rules}}
        return [
            f"warning: rule {rule.name}: only names {entry}, which matches no tracked"
            f" {_SUBJECT_NOUNS[rule.scope]}: the rule watches nothing there"
            for rule in rules
            for entry in unmatched_only(rule, keys[rule.scope])
        ]

    for line in run(ctx, go()):
        cli.err.print(line, markup=False)


def print_alert_run(cli: CliState, result: AlertRun) -> bool:
    """One line per alert fired and per channel; return whether a delivery failed."""
    for alert in result.fired:
        cli.out.print(f"alert: {alert.text}", markup=False)
    for outcome in result.outcomes:
        line = f"alerts by {outcome.channel}: {outcome.status}: {outcome.detail}"
        (cli.err if outcome.status == "failed" else cli.out).print(line, markup=False)
    if result.error is not None:
        cli.err.print(f"warning: alerts were not checked: {result.error}", markup=False)
    return any(o.status == "failed" for o in result.outcomes)


@app.command("list")
def list_alerts(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Show the alerts that fired, newest first, and how each was delivered."""
    cli = state(ctx)
    settings = cli.settings()

    async def go() -> list[AlertRecord]:
        async with open_repository(settings) as repo:
            return await AlertStore(repo.db).recent(limit)

    found = run(ctx, go())
    if as_json:
        cli.out.print(dumps([_record_json(a) for a in found]), markup=False)
        return
    if not found:
        cli.out.print(
            "No alert has fired." + ("" if settings.alerts else " " + _NO_RULES), markup=False
        )
        _warn_unmatched(ctx, cli, settings)
        return
    cli.out.print(_alerts_table(found, cli.out.width))


#: Below this many columns, the table folds the rule, the alert and its delivery into one.
WIDE = 120


def _alerts_table(found: list[AlertRecord], width: int) -> Table:
    """Recent alerts: rule names (what people edit) are never cut; times are UTC.

    Wide, a column each, the rule on one line (folded only if it cannot fit) while the
    alert and its delivery wrap. Narrow (80 columns), the rule, the alert and its delivery
    are three lines of one cell, so an alert takes a few lines, not eighteen.
    """
    table = Table(title="Recent alerts", title_justify="left")
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("fired (UTC)", no_wrap=True)
    if width >= WIDE:
        table.add_column("rule", no_wrap=True, overflow="fold")
        table.add_column("alert", ratio=2, overflow="fold")
        table.add_column("delivery", ratio=1, overflow="fold")
        for alert in found:
            table.add_row(
                str(alert.id),
                when(alert.fired_at),
                alert.rule,
                alert.text,
                _delivery_state(alert),
            )
        return table
    table.box = box.SIMPLE_HEAD
    table.pad_edge = False
    table.leading = 1
    table.add_column("rule, alert, delivery", ratio=1, overflow="fold")
    for alert in found:
        fired = when(alert.fired_at).replace(" ", "\n")
        cell = f"{alert.rule}\n{alert.text}\ndelivery: {_delivery_state(alert)}"
        table.add_row(str(alert.id), fired, cell)
    return table


@app.command("check")
def check(
    ctx: typer.Context,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Only show what would fire: record and deliver nothing."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Check the alert rules now: fire what is due, and deliver every alert still waiting.

    Each occurrence fires once, so a check after a round fires nothing new. Alerts whose
    delivery failed are sent again. Exit code 1 when a delivery failed.
    """
    cli = state(ctx)
    settings = cli.settings()
    if not settings.alerts:
        if as_json:
            cli.out.print(dumps({"fired": [], "deliveries": [], "error": None}), markup=False)
        else:
            cli.out.print(_NO_RULES, markup=False)
        return
    _warn_unmatched(ctx, cli, settings)
    if dry_run:
        _dry_run(ctx, cli, settings, as_json=as_json)
        return

    async def go() -> AlertRun:
        async with open_repository(settings) as repo:
            return await check_alerts(settings, repo.db, clock=utc_now)

    result = run(ctx, go())
    if as_json:
        cli.out.print(dumps(alerts_json(result)), markup=False)
        failed = any(o.status == "failed" for o in result.outcomes)
    else:
        failed = print_alert_run(cli, result)
        if not result.fired and not result.outcomes:
            cli.out.print("Nothing fired, and no alert was waiting to be delivered.", markup=False)
    if failed:
        raise typer.Exit(1)


def _dry_run(ctx: typer.Context, cli: CliState, settings: Settings, *, as_json: bool) -> None:
    """Print what would fire now, recording and delivering nothing."""

    async def judge() -> list[Occurrence]:
        async with open_repository(settings) as repo:
            return await judge_alerts(settings, repo.db, now=utc_now())

    due = run(ctx, judge())
    if as_json:
        payload = [
            {
                "rule": o.rule,
                "kind": o.kind,
                "subject": o.subject.ref,
                "subject_label": o.subject.label,
                "occurrence": o.key,
                "text": o.text,
                "details": dict(o.details),
            }
            for o in due
        ]
        cli.out.print(dumps({"would_fire": payload}), markup=False)
        return
    for occurrence in due:
        cli.out.print(f"would fire: {occurrence.text}", markup=False)
    if not due:
        cli.out.print("Nothing would fire now.", markup=False)
