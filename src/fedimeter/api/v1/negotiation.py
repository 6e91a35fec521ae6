"""Which format a read answers in: ``format=csv``/``json``, else what ``Accept`` asks for.

The same rule on every route that has both (an account's samples, its engagement statuses, a
tag's history): ``format`` wins; without it, ``Accept: text/csv`` gives CSV unless the header
also names ``application/json``; JSON otherwise.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query, Request

__all__ = ["FORMAT_DESCRIPTION", "Format", "wants_csv"]

FORMAT_DESCRIPTION = "JSON, or CSV with format=csv (or Accept: text/csv)."

#: The ``format`` query parameter of such a route.
Format = Annotated[
    Literal["json", "csv"] | None,
    Query(description="json or csv; by default what Accept asks for, else json."),
]


def wants_csv(request: Request, format: Literal["json", "csv"] | None) -> bool:  # noqa: A002
    """Whether to answer CSV: asked by ``format``, or by Accept (and not JSON too)."""
    if format is not None:
        return format == "csv"
    accept = request.headers.get("accept", "").lower()
    return "text/csv" in accept and "application/json" not in accept
