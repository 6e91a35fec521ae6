"""``/metrics``: Prometheus's scrape target, over ``fedimeter.metrics``."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response

from fedimeter.api.deps import ReadAccess, RepoDep
from fedimeter.api.schemas import READ_ERRORS
from fedimeter.metrics import CONTENT_TYPE, read_snapshot, render_metrics

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    dependencies=[ReadAccess],
    response_class=Response,
    responses={
        **READ_ERRORS,
        200: {
            "description": "Every metric in Prometheus's text format (see docs/metrics.md).",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        503: {"description": "The database is unavailable."},
    },
)
async def metrics(repo: RepoDep) -> Response:
    """Accounts' latest counts, instances and fedimeter's rounds, for Prometheus to scrape."""
    snapshot = await read_snapshot(repo)
    # Rendering 10,000 accounts takes a noticeable time: keep it off the event loop.
    body = await asyncio.to_thread(render_metrics, snapshot)
    return Response(body, media_type=CONTENT_TYPE)
