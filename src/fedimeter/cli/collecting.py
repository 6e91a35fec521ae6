"""``fedimeter collect`` and ``fedimeter runs``: measure now, and see what rounds did."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fedimeter.alerting import QUIET_LOG, alerts_after_round
from fedimeter.cli.alerts import alerts_json, print_alert_run
from fedimeter.cli.context import run, state
from fedimeter.cli.deliver import outcome_json, print_outcomes
from fedimeter.cli.options import JsonOption
from fedimeter.cli.render import dumps, number, run_json, when
from fedimeter.clock import utc_now
from fedimeter.collect import collect_round
from fedimeter.delivery import Deliverer, deliver_after_round
from fedimeter.domain.engagement_report import plural
from fedimeter.instance_tracking import describe_down, source_problems
from fedimeter.retention import downsample_after_round
from fedimeter.storage.deliveries import DeliveryLog
from fedimeter.storage.retention import SAMPLE_TABLES
from fedimeter.wiring import make_client, open_repository

if TYPE_CHECKING:
    from fedimeter.alerting import AlertRun
    from fedimeter.cli.context import CliState
    from fedimeter.collect import RoundResult
    from fedimeter.delivery import Outcome
    from fedimeter.retention import Downsampled
    from fedimeter.storage.records import FailureRecord, RunRecord


class _Bar:
    """A rich progress bar fed by the round."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("measuring", total=None)
        self.failed = 0

    def planned(self, total: int) -> None:
        self.progress.update(self.task, total=total)

    def advanced(self, measured: int, failed: int) -> None:
        self.failed += failed
        self.progress.update(
            self.task, advance=measured + failed, description=f"measuring ({self.failed} failed)"
        )


def summary_table(run_: RunRecord) -> Table:
    """The figures of one round as a two-column table."""
    table = Table(title=f"Round {run_.id}: {run_.status}", title_justify="left", show_header=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    duration = run_.duration_seconds
    rows = [
        ("accounts due", number(run_.accounts_planned)),
        ("measured", number(run_.accounts_measured)),
        ("failed", number(run_.accounts_failed)),
        ("requests", number(run_.requests)),
        ("retries", number(run_.retries)),
        ("rate limited (429)", number(run_.rate_limited)),
        ("waiting for rate limits", f"{run_.rate_limit_wait_seconds:.1f} s"),
        ("duration", "—" if duration is None else f"{duration:.1f} s"),
    ]
    if run_.resumes_run_id:
        rows.insert(0, ("resumes round", str(run_.resumes_run_id)))
    for name, value in rows:
        table.add_row(name, value)
    return table


def _failures_table(failures: list[FailureRecord]) -> Table:
    table = Table(title="Not measured", title_justify="left")
    table.add_column("account")
    table.add_column("reason")
    for failure in failures:
        table.add_row(str(failure.handle), failure.reason)
    return table


def _print_instances(cli: CliState, result: RoundResult) -> None:
    for instance, measurement in result.instances:
        problems = source_problems(measurement.sources)
        if not measurement.up:
            line = describe_down(instance.host, measurement)
        else:
            users = measurement.figures.users
            line = f"instance {instance.host}: up" + (
                f", {users:,} users" if users is not None else ""
            )
            if problems:
                line += "; " + "; ".join(f"{p.source} {p.status}: {p.detail}" for p in problems)
        cli.out.print(line, markup=False)


def _print_tags(cli: CliState, result: RoundResult) -> None:
    done = result.tags
    if done.measured or done.failed:
        days = f" ({done.days:,} day{'s' * (done.days != 1)} stored or updated)"
        cli.out.print(f"hashtags read: {done.measured:,}{days}", markup=False)
    for tag, error in done.failed:
        cli.out.print(f"{tag.label}: not read: {error}", markup=False)
    if done.trends:
        lists = "1 list" if done.trends == 1 else f"{done.trends:,} lists"
        cli.out.print(f"trending hashtags stored: {lists}", markup=False)
    for host, error in done.trends_failed:
        cli.out.print(f"trending hashtags of {host}: not read: {error}", markup=False)


def _print_engagement(cli: CliState, result: RoundResult) -> None:
    done = result.engagement
    if done.accounts:
        cli.out.print(
            f"engagement read: {plural(done.accounts, 'timeline')},"
            f" {plural(done.statuses, 'status', 'statuses')}, {plural(done.requests, 'request')}"
            f" ({done.paging_requests:,} paging)",
            markup=False,
        )
    for handle, error in done.failed:
        cli.out.print(f"engagement of @{handle}: not read: {error}", markup=False)
    for handle in done.capped:
        cli.out.print(
            f"engagement of @{handle}: stopped at engagement_max_pages; older posts not read",
            markup=False,
        )


def _cut_short(run_: RunRecord) -> str:
    """How a round that did not finish ended, for the line of the round that resumes it."""
    return (
        f"stopped by an error (fedimeter runs --id {run_.id})"
        if run_.status == "failed"
        else "interrupted"
    )


def _print_result(cli: CliState, result: RoundResult) -> None:
    _print_instances(cli, result)
    _print_tags(cli, result)
    _print_engagement(cli, result)
    if result.run.accounts_planned == 0 and result.resumed is None:
        tags = result.tags
        if not (result.instances or tags.measured or tags.failed or tags.trends):
            cli.out.print(
                "Nothing to measure: no tracked account, instance or hashtag is active."
                " Add one with: fedimeter track add @user@host (or fedimeter instance add HOST,"
                " fedimeter tag add NAME --on HOST)",
                markup=False,
            )
        return
    if result.resumed is not None:
        cli.out.print(
            f"Round {result.resumed.id} was {_cut_short(result.resumed)}; this round measured"
            " what it missed.",
            markup=False,
        )
    cli.out.print(summary_table(result.run))
    for account, new_state in result.state_changes:
        cli.out.print(
            f"{account.handle} is now {new_state.value}; it is no longer measured", markup=False
        )
    if result.failures:
        cli.out.print(_failures_table(result.failures))


def collect(
    ctx: typer.Context,
    as_json: JsonOption = False,
    deliver: Annotated[
        bool,
        typer.Option(
            "--deliver/--no-deliver",
            help="Deliver the scheduled report afterwards when FEDIMETER_DELIVER is daily or"
            " weekly (see docs/delivery.md).",
        ),
    ] = True,
) -> None:
    """Measure every tracked account now and store the samples.

    With scheduled delivery on (FEDIMETER_DELIVER), the daily or weekly report goes out after
    the round, once per period. Exit code 1 when a delivery failed. With retention on
    (FEDIMETER_RETENTION_DAILY_AFTER_DAYS), old samples are thinned after the round. With
    alert rules (FEDIMETER_ALERTS), they are checked after the round and what fires is
    delivered; an alert that cannot go out is retried next round, without exit code 1.
    """
    cli = state(ctx)
    settings = cli.settings()
    outcomes: list[Outcome] = []
    thinned: list[Downsampled] = []
    alert_runs: list[AlertRun] = []

    async def go(listener: _Bar | None) -> RoundResult:
        async with open_repository(settings) as repo, make_client(settings) as client:
            result = await collect_round(repo, client, settings, progress=listener)
            if result.run.status == "finished":
                alert_runs.append(
                    await alerts_after_round(settings, repo.db, clock=utc_now, logger=QUIET_LOG)
                )
                done = await downsample_after_round(settings, repo.db, now=utc_now())
                if done is not None:
                    thinned.append(done)
            if deliver and settings.deliver != "off":
                deliverer = Deliverer(settings, DeliveryLog(repo.db), clock=utc_now)
                outcomes.extend(await deliver_after_round(settings, repo, deliverer, now=utc_now()))
            return result

    if as_json or not cli.err.is_terminal:
        result = run(ctx, go(None))
    else:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=cli.err,
            transient=True,
        ) as progress:
            result = run(ctx, go(_Bar(progress)))
    if as_json:
        payload = run_json(result.run)
        payload["failures"] = [
            {"account": str(f.handle), "code": f.code, "reason": f.reason} for f in result.failures
        ]
        payload["state_changes"] = [
            {"account": str(a.handle), "state": s.value} for a, s in result.state_changes
        ]
        payload["instances"] = [
            {
                "instance": instance.host,
                "up": m.up,
                "sources": [
                    {"source": s.source, "status": s.status, "detail": s.detail} for s in m.sources
                ],
            }
            for instance, m in result.instances
        ]
        payload["tags"] = {
            "read": result.tags.measured,
            "days": result.tags.days,
            "failed": [
                {"tag": t.name, "instance": t.host, "code": e.code, "reason": str(e)}
                for t, e in result.tags.failed
            ],
            "trend_lists": result.tags.trends,
            "trends_failed": [
                {"instance": host, "code": e.code, "reason": str(e)}
                for host, e in result.tags.trends_failed
            ],
        }
        payload["engagement"] = {
            "read": result.engagement.accounts,
            "statuses": result.engagement.statuses,
            "requests": result.engagement.requests,
            "paging_requests": result.engagement.paging_requests,
            "capped": result.engagement.capped,
            "failed": [
                {"handle": handle, "code": e.code, "reason": str(e)}
                for handle, e in result.engagement.failed
            ],
        }
        payload["deliveries"] = [outcome_json(o) for o in outcomes]
        payload["alerts"] = alerts_json(alert_runs[0]) if alert_runs else None
        payload["downsampled"] = (
            {table: thinned[0].removed(table) for table in SAMPLE_TABLES} if thinned else None
        )
        cli.out.print(dumps(payload), markup=False)
        failed = any(o.status == "failed" for o in outcomes)
    else:
        _print_result(cli, result)
        if thinned and thinned[0].total:
            cli.out.print(
                f"Old samples downsampled ({thinned[0].policy.describe()}): removed"
                f" {thinned[0].removed('account_samples'):,} account samples and"
                f" {thinned[0].removed('instance_samples'):,} instance samples",
                markup=False,
            )
        failed = print_outcomes(cli, outcomes)
        if alert_runs:
            # An alert that could not go out does not fail the round: it is retried next time.
            print_alert_run(cli, alert_runs[0])
    if failed:
        raise typer.Exit(1)


def runs(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many rounds.")] = 10,
    run_id: Annotated[
        int | None, typer.Option("--id", help="Show one round with its failures.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show recent collection rounds, or one round with the reason of each failure."""
    cli = state(ctx)
    settings = cli.settings()

    async def go() -> tuple[list[RunRecord], list[FailureRecord]]:
        async with open_repository(settings) as repo:
            if run_id is not None:
                return [await repo.get_run(run_id)], await repo.run_failures([run_id])
            return await repo.list_runs(limit), []

    found, failures = run(ctx, go())
    if as_json:
        payload = [run_json(r) for r in found]
        if run_id is not None:
            payload[0]["failures"] = [
                {"account": str(f.handle), "code": f.code, "reason": f.reason} for f in failures
            ]
        cli.out.print(dumps(payload[0] if run_id is not None else payload), markup=False)
        return
    if run_id is not None:
        cli.out.print(summary_table(found[0]))
        if failures:
            cli.out.print(_failures_table(failures))
        return
    if not found:
        cli.out.print("No rounds yet. Run one with: fedimeter collect", markup=False)
        return
    table = Table(title="Recent rounds", title_justify="left")
    for name in ("id", "started", "status", "measured", "failed", "requests", "duration"):
        table.add_column(name, justify="left" if name in {"started", "status"} else "right")
    for r in found:
        duration = r.duration_seconds
        table.add_row(
            str(r.id),
            when(r.started_at),
            r.status,
            f"{r.accounts_measured:,}/{r.accounts_planned:,}",
            number(r.accounts_failed),
            number(r.requests),
            "—" if duration is None else f"{duration:.1f} s",
        )
    cli.out.print(table)
