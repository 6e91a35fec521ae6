"""``/api/v1/report``: how the tracked accounts did over a period."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from fedimeter.api.deps import ReadAccess, ServicesDep
from fedimeter.api.schemas import MAX_ID, READ_ERRORS
from fedimeter.domain.report_html import render_html
from fedimeter.domain.report_render import render_csv, render_json, render_markdown, render_text
from fedimeter.reporting import make_report, report_period

router = APIRouter(tags=["report"], responses=READ_ERRORS)

_MEDIA = {
    "text": "text/plain; charset=utf-8",
    "markdown": "text/markdown; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "html": "text/html; charset=utf-8",
}


@router.get(
    "/report",
    dependencies=[ReadAccess],
    responses={
        200: {
            "description": "JSON, or text, Markdown, CSV or HTML with format=...",
            "content": {media: {} for media in _MEDIA.values()},
        },
        404: {"description": "An account id that is not tracked."},
        422: {"description": "A period, date or parameter that cannot be used."},
    },
)
async def get_report(  # noqa: PLR0917 - each query parameter is an argument
    services: ServicesDep,
    period: Annotated[
        str | None, Query(description="Length of the period ending at until: 1d, 7d, 30d, 12w.")
    ] = None,
    since: Annotated[
        str | None, Query(description="Start: YYYY-MM-DD, an ISO datetime, or an age (30d).")
    ] = None,
    until: Annotated[str | None, Query(description="End (default now).")] = None,
    account_id: Annotated[
        list[Annotated[int, Query(ge=1, le=MAX_ID)]] | None,
        Query(description="Accounts to include (repeat the parameter); default all tracked."),
    ] = None,
    format: Annotated[  # noqa: A002 - the parameter's public name
        Literal["json", "text", "markdown", "csv", "html"],
        Query(description="json (default), text, markdown, csv or html (one self-contained page)."),
    ] = "json",
    sort: Annotated[Literal["growth", "followers", "name"], Query()] = "growth",
    top: Annotated[int | None, Query(ge=1, le=100_000)] = None,
    silent_days: Annotated[int, Query(ge=0, le=36_500)] = 30,
) -> dict[str, Any]:
    """The report for a period (default the last 7 days): counts, change, pace, silence."""
    now = services.clock()
    start, end = report_period(now, period, since, until)
    accounts = None
    if account_id:
        accounts = [await services.repo.get_account(i) for i in dict.fromkeys(account_id)]
    report = await make_report(
        services.repo,
        since=start,
        until=end,
        now=now,
        accounts=accounts,
        sort=sort,
        top=top,
        silent_after_days=silent_days,
    )
    if format == "json":
        return render_json(report)
    renderer = {
        "text": render_text,
        "markdown": render_markdown,
        "csv": render_csv,
        "html": render_html,
    }[format]
    return Response(renderer(report), media_type=_MEDIA[format])  # type: ignore[return-value]
