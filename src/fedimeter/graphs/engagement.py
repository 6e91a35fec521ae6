"""An account's engagement, a bar per UTC day or ISO week: what its posts received, or did.

Three metrics, each over the buckets ``domain.engagement.engagement_buckets`` gives:

- ``interactions``: favourites, boosts and replies received per own status, stacked;
- ``rate``: the engagement rate (interactions per own status over followers, in percent),
  as a line with a dot a bucket;
- ``activity``: posts, replies and boosts made, stacked.

A bucket without an own status has no bar (and no rate): nothing was there to receive, which
is not a zero. Buckets whose counts are still read each round (provisional) are drawn pale
and hatched (open dots on the rate's line), so a week still growing never reads as a drop;
when every bar is provisional, a note above the axes says so once instead. Handles come from
servers: every text is drawn as it is, never as mathematics.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Literal, get_args

from matplotlib.colors import to_rgb
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from fedimeter.graphs.drawing import (
    NICE_STEPS,
    DecimalFormatter,
    check_period,
    legend_below,
    new_figure,
    num,
    period_text,
    say,
    style_axes,
    theme_of,
)
from fedimeter.graphs.encode import encode

if TYPE_CHECKING:
    from collections.abc import Sequence

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from fedimeter.domain.engagement import EngagementFigures
    from fedimeter.graphs.options import GraphOptions, Theme

__all__ = [
    "ENGAGEMENT_METRICS",
    "EngagementMetric",
    "engagement_figure",
    "render_engagement",
]

EngagementMetric = Literal["interactions", "rate", "activity"]
ENGAGEMENT_METRICS: tuple[EngagementMetric, ...] = get_args(EngagementMetric)

BAR_SHARE = 0.8  # of a bucket a bar covers
PALE = 0.35  # share of the colour in the fill of a provisional bar
HATCH = "////"
VALUE_AIR = 1.15
MOMENT = timedelta(microseconds=1)  # a period ending at midnight ends with the day before
NO_POST = "No post of its own in this period"
STILL_GROWING = "still read each round (counts growing)"
ALL_GROWING = "Every {by} still read each round: counts may grow"

_STACKS: dict[str, tuple[tuple[str, str], ...]] = {
    "interactions": (
        ("favourites_per_post", "favourites per post"),
        ("boosts_per_post", "boosts per post"),
        ("replies_per_post", "replies per post"),
    ),
    "activity": (("posts", "posts"), ("replies", "replies"), ("boosts", "boosts made")),
}
_TITLES = {
    "interactions": "interactions received per post",
    "rate": "engagement rate",
    "activity": "posts, replies and boosts made",
}


def engagement_figure(
    handle: str,
    buckets: Sequence[EngagementFigures],
    metric: EngagementMetric,
    *,
    by: Literal["day", "week"],
    since: datetime,
    until: datetime,
    options: GraphOptions,
) -> Figure:
    """Build the figure of one ``metric`` of an account's ``buckets`` (days or weeks).

    Returns:
        A new ``Figure`` with one axes; with nothing to show, one that says so.

    Raises:
        ValueError: an unknown metric, naive times, or ``since`` not before ``until``.
    """
    if metric not in ENGAGEMENT_METRICS:
        raise ValueError(f"metric must be one of {', '.join(ENGAGEMENT_METRICS)}, not {metric!r}")
    check_period(since, until)
    theme = theme_of(options)
    per = "a day" if by == "day" else "a week"
    fig = new_figure(
        options, theme, f"{handle} — {_TITLES[metric]} {per}, {period_text(since, until)}"
    )
    ax = fig.add_subplot()
    step = timedelta(days=1 if by == "day" else 7)
    # Whole days (weeks), as the tag graphs: a day's bar is centred on its noon, on its tick.
    start, end = _bucket_start(since, by), _bucket_start(until - MOMENT, by) + step
    style_axes(ax, theme, start, end, options, days=by == "day")
    shown = [b for b in buckets if b.own or (metric == "activity" and b.boosts)]
    if not shown:
        say(ax, NO_POST if metric != "activity" else "Nothing posted in this period", theme)
        return fig
    if metric == "rate":
        top = _draw_rate(ax, shown, theme, step)
        ax.yaxis.set_major_locator(MaxNLocator(nbins="auto", steps=NICE_STEPS, min_n_ticks=3))
        ax.yaxis.set_major_formatter(DecimalFormatter("%"))
    else:
        # When every bar is provisional, hatching each tells nothing: a note says it once.
        every = all(b.provisional for b in shown)
        top = _draw_stack(ax, shown, _STACKS[metric], theme, step, mark=not every)
        if every:
            say(ax, ALL_GROWING.format(by=by), theme, above=True)
        if metric != "activity":  # received per post: a ratio, not a count
            ax.yaxis.set_major_locator(MaxNLocator(nbins="auto", steps=NICE_STEPS, min_n_ticks=3))
            ax.yaxis.set_major_formatter(DecimalFormatter())
    if metric == "rate" and top <= 0:
        say(ax, "No engagement rate: no followers known", theme)
        return fig
    ax.set_ylim(0, (top if top > 0 else 1.0) * VALUE_AIR)
    legend_below(fig, ax, theme)
    return fig


def _bucket_start(moment: datetime, by: Literal["day", "week"]) -> datetime:
    """The UTC midnight starting the day (or the ISO week, a Monday) of ``moment``."""
    day = moment.astimezone(UTC).date()
    if by == "week":
        day -= timedelta(days=day.weekday())
    return datetime.combine(day, time(), UTC)


def _centre(bucket: EngagementFigures, step: timedelta) -> float:
    """The middle of the bucket's whole day (noon) or week, even when the period cuts it."""
    by: Literal["day", "week"] = "day" if step == timedelta(days=1) else "week"
    return num(_bucket_start(bucket.since, by) + step / 2)


def _draw_stack(
    ax: Axes,
    buckets: Sequence[EngagementFigures],
    parts: tuple[tuple[str, str], ...],
    theme: Theme,
    step: timedelta,
    *,
    mark: bool,
) -> float:
    """Stacked bars, one per bucket; returns the tallest stack.

    With ``mark``, provisional buckets are pale and hatched. The legend's keys (gid
    ``key-<part>``, ``provisional-key``) are drawn as the bars are: a bar container's own key
    takes the look of its first bar, whatever it is.
    """
    width = step / timedelta(days=1) * BAR_SHARE
    bottoms = [0.0] * len(buckets)
    for n, (name, label) in enumerate(parts):
        colour = theme.palette[n]
        values = [float(getattr(b, name) or 0.0) for b in buckets]
        bars = ax.bar(
            [_centre(b, step) for b in buckets],
            values,
            width=width,
            bottom=bottoms,
            color=colour,
            edgecolor="none",
            linewidth=0.6,
            label="_nolegend_",
            gid=f"stack-{name}",
        )
        for bar, bucket in zip(bars, buckets, strict=True):
            if mark and bucket.provisional:
                _style_provisional(bar, colour, theme)
        _key(ax, label, f"key-{name}", facecolor=colour)
        bottoms = [low + value for low, value in zip(bottoms, values, strict=True)]
    if mark and any(b.provisional for b in buckets):
        key = _key(ax, STILL_GROWING, "provisional-key", facecolor=theme.palette[0])
        _style_provisional(key, theme.palette[0], theme)
    return max(bottoms, default=0.0)


def _style_provisional(bar: Rectangle, colour: str, theme: Theme) -> None:
    """A provisional bar (or its key): pale, hatched and outlined in its colour."""
    bar.set_facecolor(_pale(colour, theme))
    bar.set_edgecolor(colour)
    bar.set_hatch(HATCH)


def _key(ax: Axes, label: str, gid: str, *, facecolor: str) -> Rectangle:
    """A legend key of no size, out of sight: the legend draws it at its own size."""
    key = Rectangle(
        (0, 0), 0, 0, facecolor=facecolor, edgecolor="none", linewidth=0.6, label=label, gid=gid
    )
    key.set_in_layout(False)
    ax.add_artist(key)
    return key


def _draw_rate(
    ax: Axes, buckets: Sequence[EngagementFigures], theme: Theme, step: timedelta
) -> float:
    """The rate a bucket as dots joined by a line (gaps where unknown); returns the highest."""
    colour = theme.palette[0]
    xs = [_centre(b, step) for b in buckets if b.rate is not None]
    ys = [b.rate for b in buckets if b.rate is not None]
    if not ys:
        return 0.0
    ax.plot(
        xs,
        ys,
        color=colour,
        linewidth=1.8,
        marker="o",
        markersize=4,
        label="engagement rate (interactions per post / followers)",
        gid="rate",
    )
    growing = [(_centre(b, step), b.rate) for b in buckets if b.rate is not None and b.provisional]
    if growing:
        ax.plot(
            [x for x, _ in growing],
            [y for _, y in growing],
            linestyle="none",
            marker="o",
            markersize=6,
            markerfacecolor=theme.background,
            markeredgecolor=colour,
            gid="rate-provisional",
            label=STILL_GROWING,  # its own look is the legend's key
        )
    return float(max(ys))


def _pale(colour: str, theme: Theme) -> tuple[float, float, float]:
    ink, paper = to_rgb(colour), to_rgb(theme.background)
    r, g, b = (PALE * i + (1 - PALE) * p for i, p in zip(ink, paper, strict=True))
    return r, g, b


def render_engagement(
    handle: str,
    buckets: Sequence[EngagementFigures],
    metric: EngagementMetric,
    *,
    by: Literal["day", "week"],
    since: datetime,
    until: datetime,
    options: GraphOptions,
) -> bytes:
    """Draw one metric of an account's engagement, a bar (or dot) per day or week.

    Returns:
        PNG or SVG bytes, as ``options`` asks.

    Raises:
        ValueError: an unknown metric, naive times, or ``since`` not before ``until``.
    """
    fig = engagement_figure(
        handle, buckets, metric, by=by, since=since, until=until, options=options
    )
    return encode(fig, options)
