"""Drawing an account's graph from storage, off the event loop."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from fedimeter.errors import InvalidInput
from fedimeter.graphs import GraphOptions, render_combined, render_metric

if TYPE_CHECKING:
    from fedimeter.storage.records import AccountRecord
    from fedimeter.storage.repository import Repository

__all__ = ["GraphMetric", "account_graph", "graph_options"]

GraphMetric = Literal["followers", "following", "statuses", "combined"]

#: The shortest period a graph shows, so a fresh account's first sample is not a dot at the edge.
MIN_SPAN = timedelta(days=1)


def graph_options(
    fmt: str, theme: str = "light", scale: float = 1.0, width: int = 1000, height: int = 500
) -> GraphOptions:
    """Graph options from what a person or a request asked for.

    Raises:
        InvalidInput: a format, theme, scale or size no graph can be drawn with.
    """
    try:
        return GraphOptions(
            fmt=fmt,  # type: ignore[arg-type]  # validated by GraphOptions
            theme=theme,  # type: ignore[arg-type]
            scale=scale,
            width_px=width,
            height_px=height,
        )
    except ValueError as exc:
        raise InvalidInput(f"cannot draw that graph: {exc}") from None


async def account_graph(
    repo: Repository,
    account: AccountRecord,
    *,
    metric: GraphMetric,
    since: datetime | None,
    until: datetime | None,
    now: datetime,
    options: GraphOptions,
) -> bytes:
    """One account's graph for ``[since, until]``; with neither, its whole history.

    Rendering is CPU work: it runs in a worker thread so a server keeps answering meanwhile.

    Raises:
        InvalidInput: since is not before until.
        StorageError: the database refused.
    """
    end = until or now
    if since is not None and since >= end:
        raise InvalidInput("since must be before until")
    samples = await repo.samples(account.id, since, end)
    if since is None and until is None and samples:
        # "All of it" means the account's own history, not a window ending today in which
        # an account measured long ago would be squeezed against the left edge.
        end = samples[-1].taken_at
    start = since
    if start is None:
        first = samples[0].taken_at if samples else end
        start = min(first, end - MIN_SPAN)
    handle = str(account.handle)
    if metric == "combined":
        return await asyncio.to_thread(
            render_combined, handle, samples, since=start, until=end, options=options
        )
    return await asyncio.to_thread(
        render_metric, handle, metric, samples, since=start, until=end, options=options
    )
