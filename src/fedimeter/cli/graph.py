"""``fedimeter graph``: an account's growth, or several accounts compared, as a PNG or SVG file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fedimeter.cli.context import fail, run, state
from fedimeter.cli.options import (
    HeightOption,
    ScaleOption,
    SinceOption,
    ThemeOption,
    UntilOption,
    WidthOption,
    graph_file,
    graph_look,
    output_option,
    write_graph,
)
from fedimeter.clock import utc_now
from fedimeter.domain.handles import parse_account_ref
from fedimeter.domain.models import AccountRef
from fedimeter.domain.when import parse_period
from fedimeter.errors import FedimeterError, InvalidInput, NotTracked
from fedimeter.graphing import (
    GraphMetric,
    account_graph,
    comparison_graph,
    distinct_compared,
)
from fedimeter.storage.records import AccountRecord
from fedimeter.storage.repository import Repository
from fedimeter.tracking import find_tracked
from fedimeter.wiring import open_repository


def graph(
    ctx: typer.Context,
    handles: Annotated[
        list[str],
        typer.Argument(
            help="A tracked account (@user@host or profile URL), or up to 20 to compare.",
            show_default=False,
        ),
    ],
    metric: Annotated[
        GraphMetric,
        typer.Option(help="followers, following, statuses, or combined (one account only)."),
    ] = "followers",
    indexed: Annotated[
        bool,
        typer.Option(
            "--indexed", help="Compare growth: each account starts at 100 (two or more accounts)."
        ),
    ] = False,
    since: SinceOption = None,
    until: UntilOption = None,
    output: Annotated[
        Path | None,
        output_option("ACCOUNT-METRIC.png, or comparison-METRIC.png for several accounts"),
    ] = None,
    theme: ThemeOption = "light",
    scale: ScaleOption = 1.0,
    width: WidthOption = 1000,
    height: HeightOption = 500,
) -> None:
    """Draw accounts' followers, following or posts over time into a PNG or SVG file.

    One account gets its own graph; two or more are compared on one (--indexed to compare
    growth rather than size).
    """
    cli = state(ctx)
    settings = cli.settings()
    now = utc_now()
    try:
        parsed = [
            parse_account_ref(text, default_scheme=settings.default_scheme) for text in handles
        ]
        by_key: dict[str, AccountRef] = {}
        for ref in parsed:
            by_key.setdefault(ref.handle.key, ref)  # the same account twice is drawn once
        refs = [by_key[key] for key in distinct_compared(by_key)]
        compare = len(refs) > 1
        if compare and metric == "combined":
            raise InvalidInput(
                "--metric combined draws one account: compare followers, following or statuses"
            )
        if indexed and not compare:
            raise InvalidInput("--indexed compares accounts: give two or more handles")
        start, end = parse_period(since, until, now)
        path = output or _default_path(refs, metric, indexed=indexed)
        options = graph_look(path, theme, scale, width, height)
    except FedimeterError as exc:
        fail(ctx, exc)

    async def go() -> bytes:
        async with open_repository(settings) as repo:
            accounts = [await _tracked(repo, ref) for ref in refs]
            if not compare:
                return await account_graph(
                    repo,
                    accounts[0],
                    metric=metric,
                    since=start,
                    until=end,
                    now=now,
                    options=options,
                )
            assert metric != "combined"  # noqa: S101 - refused above
            return await comparison_graph(
                repo,
                accounts,
                metric=metric,
                indexed=indexed,
                since=start,
                until=end,
                now=now,
                options=options,
            )

    image = run(ctx, go())
    write_graph(ctx, path, image)


def _default_path(refs: list[AccountRef], metric: str, *, indexed: bool) -> Path:
    """``alice@example.org-followers.png``, or ``comparison-followers[-indexed].png``."""
    if len(refs) == 1:
        return graph_file(f"{refs[0].handle.acct}-{metric}")
    return graph_file(f"comparison-{metric}{'-indexed' if indexed else ''}")


async def _tracked(repo: Repository, ref: AccountRef) -> AccountRecord:
    """The tracked account ``ref`` names.

    Raises:
        NotTracked: it is not tracked.
    """
    account = await find_tracked(repo, ref)
    if account is None:
        raise NotTracked(f"{ref.handle} is not tracked (see: fedimeter track list)")
    return account
