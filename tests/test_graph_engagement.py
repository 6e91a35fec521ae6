"""Engagement graphs as drawn: bars on their days' ticks, legends that look like the bars."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from fedimeter.domain.engagement import EngagementFigures, engagement_buckets
from fedimeter.graphs import GraphOptions, ThemeName
from fedimeter.graphs.engagement import EngagementMetric, engagement_figure
from test_engagement import DAY, T0, Sample, Status
from test_graph import drawn, num

# A label or bar that pushes the layout out of the figure warns; here that is a failure.
pytestmark = pytest.mark.filterwarnings("error::UserWarning")

HANDLE = "@a@s.example"


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


def legend_keys(fig: Figure) -> dict[str, object]:
    """The figure's legend: each label and the artist drawn as its key."""
    (legend,) = fig.legends
    return {
        text.get_text(): handle
        for text, handle in zip(legend.get_texts(), legend.legend_handles, strict=True)
    }


def look(patch: object) -> tuple[object, ...]:
    """What a bar or a legend key looks like: its fill, hatch and edge."""
    assert isinstance(patch, Rectangle)
    return (
        tuple(patch.get_facecolor()),
        patch.get_hatch() or "",
        tuple(patch.get_edgecolor()) if patch.get_linewidth() else "no edge",
    )


@pytest.mark.parametrize("metric", ["interactions", "activity"])
@pytest.mark.parametrize("theme", ["light", "dark"])
def test_each_legend_key_looks_like_the_bars_it_names(
    metric: EngagementMetric, theme: ThemeName
) -> None:
    """The "still read" key is a pale hatched bar as those bars are; the others solid.

    The key was a solid dark box (an empty bar container's default) under pale hatched bars,
    and a part's key took the look of its first bar, hatched when the period began growing.
    """
    first = "stack-favourites_per_post" if metric == "interactions" else "stack-posts"
    fig = figure(
        buckets(7, growing_from=4),
        metric,
        options=GraphOptions(theme=theme),
    )
    (ax,) = fig.axes
    shown = [bar for bar in bars_of(ax, first) if bar.get_height()]
    done, growing = shown[:4], shown[4:]
    assert {look(bar) for bar in done} != {look(bar) for bar in growing}
    keys = legend_keys(fig)
    assert list(keys)[-1] == "still read each round (counts growing)"
    assert look(keys["still read each round (counts growing)"]) == look(growing[0])
    assert look(next(iter(keys.values()))) == look(done[0])


def test_the_rate_key_is_an_open_dot_as_the_growing_days_are() -> None:
    """On the rate's line a growing day is an open dot: so is its key."""
    fig = figure(buckets(7, growing_from=4), "rate")
    (ax,) = fig.axes
    (dots,) = [line for line in ax.get_lines() if line.get_gid() == "rate-provisional"]
    key = legend_keys(fig)["still read each round (counts growing)"]
    assert hasattr(key, "get_marker")
    for prop in ("marker", "markerfacecolor", "markeredgecolor", "markersize", "linestyle"):
        assert getattr(key, f"get_{prop}")() == getattr(dots, f"get_{prop}")(), prop


def test_when_every_bar_is_growing_a_note_says_it_once() -> None:
    """A week all still read: plain bars, no legend entry, a note above the axes."""
    fig = figure(buckets(7, growing_from=0), "interactions")
    (ax,) = fig.axes
    shown = [bar for bar in bars_of(ax, "stack-favourites_per_post") if bar.get_height()]
    assert len(shown) == 7
    assert not any(bar.get_hatch() for bar in shown)
    assert "still read each round (counts growing)" not in legend_keys(fig)
    (note,) = [text for text in ax.texts if text.get_gid() == "note"]
    assert note.get_text() == "Every day still read each round: counts may grow"
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    assert note.get_window_extent(renderer).y0 >= ax.bbox.y1
