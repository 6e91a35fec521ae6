"""``fedimeter report``: how the tracked accounts did over a period."""

from __future__ import annotations

import json
from typing import Annotated, Literal

import typer

from fedimeter.cli.context import fail, run, state
from fedimeter.cli.deliver import print_outcomes
from fedimeter.clock import utc_now
from fedimeter.config import Channel
from fedimeter.delivery import Deliverer, Outcome, selection_key
from fedimeter.domain.handles import parse_account_ref
from fedimeter.domain.report import Report
from fedimeter.domain.report_html import render_html
from fedimeter.domain.report_render import render_csv, render_json, render_markdown, render_text
from fedimeter.errors import FedimeterError, NotTracked
from fedimeter.reporting import make_report, report_period
from fedimeter.storage.deliveries import DeliveryLog
from fedimeter.storage.records import AccountRecord
from fedimeter.tracking import find_tracked
from fedimeter.wiring import open_repository

Format = Literal["text", "markdown", "csv", "json", "html"]
Sort = Literal["growth", "followers", "name"]


def render(report: Report, fmt: Format) -> str:
    """The report in one of the text formats."""
    if fmt == "html":
        return render_html(report)
    if fmt == "markdown":
        return render_markdown(report)
    if fmt == "csv":
        return render_csv(report)
    if fmt == "json":
        return json.dumps(render_json(report), indent=2, ensure_ascii=False) + "\n"
    return render_text(report)


def report(
    ctx: typer.Context,
    accounts: Annotated[
        list[str] | None,
        typer.Argument(help="Accounts to report on (handles or profile URLs); default all."),
    ] = None,
    period: Annotated[
        str | None,
        typer.Option(help="Length of the period ending now (or at --until): 1d, 7d, 30d, 12w..."),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Start of the period (YYYY-MM-DD, ISO datetime, or 30d).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="End of the period (default now).")] = None,
    fmt: Annotated[
        Format, typer.Option("--format", "-f", help="text, markdown, csv, json or html (one page).")
    ] = "text",
    sort: Annotated[Sort, typer.Option(help="Order: growth, followers or name.")] = "growth",
    top: Annotated[int | None, typer.Option(min=1, help="Only the first N accounts.")] = None,
    silent_days: Annotated[
        int, typer.Option(min=0, help="An account with no post for this many days is silent.")
    ] = 30,
    post: Annotated[
        bool,
        typer.Option(
            "--post", help="Post it on Mastodon (post_instance, post_token), as a thread if long."
        ),
    ] = False,
    webhook: Annotated[
        bool, typer.Option("--webhook", help="Send it to webhook_url as JSON.")
    ] = False,
    email: Annotated[
        bool, typer.Option("--email", help="E-mail it (smtp_host, email_from, email_to).")
    ] = False,
) -> None:
    """Report followers, following and posts over a period: change, pace, milestones, silence.

    The period defaults to the last 7 days. With --post, --webhook or --email the report is
    delivered instead of printed, once per period and place (see docs/delivery.md); the exit
    code is 1 when a delivery failed.
    """
    cli = state(ctx)
    settings = cli.settings()
    now = utc_now()
    wanted: dict[Channel, bool] = {"mastodon": post, "webhook": webhook, "email": email}
    channels = [channel for channel, asked in wanted.items() if asked]
    try:
        start, end = report_period(now, period, since, until)
        refs = [
            parse_account_ref(a, default_scheme=settings.default_scheme) for a in accounts or []
        ]
    except FedimeterError as exc:
        fail(ctx, exc)
    outcomes: list[Outcome] = []

    async def go() -> Report:
        async with open_repository(settings) as repo:
            deliverer = Deliverer(settings, DeliveryLog(repo.db), clock=utc_now)
            deliverer.check(channels)  # before any work: a missing setting fails at once
            chosen: list[AccountRecord] | None = None
            if refs:
                chosen = []
                for ref in refs:
                    account = await find_tracked(repo, ref)
                    if account is None:
                        raise NotTracked(f"{ref.handle} is not tracked (see: fedimeter track list)")
                    chosen.append(account)
            report = await make_report(
                repo,
                since=start,
                until=end,
                now=now,
                accounts=chosen,
                sort=sort,
                top=top,
                silent_after_days=silent_days,
            )
            if channels:
                selection = selection_key(
                    None if chosen is None else [a.handle.acct for a in chosen]
                )
                outcomes.extend(await deliverer.deliver(report, channels, selection=selection))
            return report

    report = run(ctx, go())
    if not channels:
        typer.echo(render(report, fmt), nl=False)
    elif print_outcomes(cli, outcomes):
        raise typer.Exit(1)
