"""Engagement graphs as drawn: bars on their days' ticks, legends that look like the bars."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from fedimeter.domain.engagement import EngagementFigures, engagement_buckets
from fedimeter.graphs import GraphOptions
from fedimeter.graphs.engagement import EngagementMetric, engagement_figure
from test_graph import drawn, num

# A label or bar that pushes the layout out of the figure warns; here that is a failure.
pytestmark = pytest.mark.filterwarnings("error::UserWarning")

T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
DAY = timedelta(days=1)
HANDLE = "@a@s.example"


@dataclass(frozen=True)
class Status:
    """A stored status, as the figures see one."""

    id: str
    created_at: datetime
    kind: str
    favourites: int = 0
    reblogs: int = 0
    replies: int = 0
    in_reply_to_id: str | None = None
    url: str | None = None
    excerpt: str = ""
    last_seen_at: datetime = T0 + 30 * DAY


@dataclass(frozen=True)
class Sample:
    """An account sample, as the figures see one."""

    taken_at: datetime
    followers: int


def buckets(
    days: int, *, growing_from: int, since: datetime = T0, until: datetime | None = None
) -> list[EngagementFigures]:
    """A post a day from T0 for ``days`` days; those from day ``growing_from`` still read."""
    read = T0 + days * DAY
    statuses = [
        Status(
            str(n),
            T0 + n * DAY + timedelta(hours=9),
            "post",
            2 + n,
            1,
            1,
            last_seen_at=read if n >= growing_from else T0,
        )
        for n in range(days)
    ]
    return engagement_buckets(
        statuses,
        [Sample(T0, 100)],
        since=since,
        until=until or T0 + days * DAY,
        read_at=read,
    )


def figure(
    found: list[EngagementFigures],
    metric: EngagementMetric,
    *,
    since: datetime = T0,
    until: datetime | None = None,
    options: GraphOptions | None = None,
) -> Figure:
    """The figure of ``metric`` by day, after a layout pass."""
    return drawn(
        engagement_figure(
            HANDLE,
            found,
            metric,
            by="day",
            since=since,
            until=until or found[-1].until,
            options=options or GraphOptions(),
        )
    )


def noon(day: int) -> float:
    """The date number of the noon of day ``day`` from T0."""
    return num(T0 + day * DAY + DAY / 2)


def bars_of(ax: Axes, gid: str) -> list[Rectangle]:
    """The bars of one stacked part."""
    return [p for p in ax.patches if isinstance(p, Rectangle) and p.get_gid() == gid]


def test_a_days_bar_is_centred_on_its_noon_and_its_tick() -> None:
    """As a tag's day: the bar of a day over the tick that names it, even when cut.

    A period from 14:17 to 14:17 cut its first and last days; their bars were centred on
    what was left of them, and ticks at midnight fell between bars.
    """
    since, until = T0 - DAY + timedelta(hours=14, minutes=17), T0 + 6 * DAY + timedelta(hours=14)
    fig = figure(buckets(7, growing_from=3, since=since, until=until), "interactions", since=since)
    (ax,) = fig.axes
    shown = bars_of(ax, "stack-favourites_per_post")
    assert [b.get_x() + b.get_width() / 2 for b in shown if b.get_height()] == [
        pytest.approx(noon(n)) for n in range(7)
    ]
    assert all(b.get_width() == pytest.approx(0.8) for b in shown)
    # The axis covers the whole days the period meets; a tick at each day's noon.
    assert ax.get_xlim() == pytest.approx((noon(-1) - 0.5, noon(6) + 0.5))
    low, high = ax.get_xlim()
    ticks = [
        (float(x), t.get_text())
        for x, t in zip(ax.get_xticks(), ax.get_xticklabels(), strict=True)
        if low <= x <= high
    ]
    assert [x for x, _ in ticks] == pytest.approx([noon(n) for n in range(-1, 7)])
    assert [text for _, text in ticks] == [f"Mar {2 + n}" for n in range(-1, 7)]
