"""Account figures: one metric, followers and statuses together, and comparisons.

Every function makes a new ``Figure`` from the shared pieces in ``drawing``; values keep their
gaps (see ``drawing.runs``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from matplotlib.ticker import MaxNLocator

from fedimeter.graphs.drawing import (
    MARKERS_UP_TO,
    NICE_STEPS,
    DecimalFormatter,
    Points,
    check_period,
    draw_counts,
    draw_line,
    in_period,
    legend_below,
    new_figure,
    panel_title,
    period_text,
    say,
    set_value_limits,
    style_axes,
    theme_of,
)
from fedimeter.graphs.options import MAX_SERIES, METRICS, Metric, SampleLike, Series

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from fedimeter.graphs.options import GraphOptions

__all__ = ["combined_figure", "comparison_figure", "metric_figure"]

INDEX_BASE = 100.0
# Once the palette runs out, colours repeat with these: 7 colours x 3 styles tell 21 lines
# apart, which is why a comparison stops at MAX_SERIES = 20.
LINE_STYLES = ("-", "--", "-.")

_VALUE: dict[Metric, Callable[[SampleLike], int]] = {
    "followers": lambda sample: sample.followers,
    "following": lambda sample: sample.following,
    "statuses": lambda sample: sample.statuses,
}


def metric_figure(
    title_handle: str,
    metric: Metric,
    samples: Sequence[SampleLike],
    *,
    since: datetime,
    until: datetime,
    options: GraphOptions,
) -> Figure:
    """Build the figure of one metric of one account over ``since`` to ``until``.

    Samples outside the period are left out. With no sample the figure says so; with one it
    shows the point, its value and a note.

    Returns:
        A new ``Figure`` with one axes, ready to encode.

    Raises:
        ValueError: an unknown metric, naive times, or ``since`` not before ``until``.
    """
    check_period(since, until)
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, not {metric!r}")
    theme = theme_of(options)
    fig = new_figure(options, theme, f"{title_handle} — {metric}, {period_text(since, until)}")
    ax = fig.add_subplot()
    style_axes(ax, theme, since, until, options)
    value = _VALUE[metric]
    points = in_period(((s.taken_at, value(s)) for s in samples), since, until)
    draw_counts(ax, points, title_handle, theme.palette[0], theme)
    return fig


def combined_figure(
    title_handle: str,
    samples: Sequence[SampleLike],
    *,
    since: datetime,
    until: datetime,
    options: GraphOptions,
) -> Figure:
    """Build followers (top) and statuses (bottom) of one account, sharing the time axis.

    Returns:
        A new ``Figure`` with two axes, followers first.

    Raises:
        ValueError: naive times, or ``since`` not before ``until``.
    """
    check_period(since, until)
    theme = theme_of(options)
    title = f"{title_handle} — followers and statuses, {period_text(since, until)}"
    fig = new_figure(options, theme, title)
    top = fig.add_subplot(2, 1, 1)
    bottom = fig.add_subplot(2, 1, 2, sharex=top)
    metrics: tuple[Metric, Metric] = ("followers", "statuses")
    for n, (ax, metric) in enumerate(zip((top, bottom), metrics, strict=True)):
        style_axes(ax, theme, since, until, options)
        panel_title(ax, metric, theme)
        value = _VALUE[metric]
        points = in_period(((s.taken_at, value(s)) for s in samples), since, until)
        draw_counts(ax, points, title_handle, theme.palette[n], theme)
    top.tick_params(axis="x", labelbottom=False)
    top.xaxis.get_offset_text().set_visible(False)
    return fig


def comparison_figure(
    series: Sequence[Series],
    *,
    title: str = "Comparison",
    indexed: bool,
    since: datetime,
    until: datetime,
    options: GraphOptions,
) -> Figure:
    """Build several series on one time axis, with their latest values in the legend.

    With ``indexed`` each series is rebased to 100 at its first non-zero point in the period,
    so accounts of different sizes compare by growth; a series of zeros only is listed as such
    and not drawn.

    Returns:
        A new ``Figure`` with one axes and a legend below it.

    Raises:
        ValueError: more than ``MAX_SERIES`` series, naive times, or ``since`` not before
            ``until``.
    """
    check_period(since, until)
    if len(series) > MAX_SERIES:
        raise ValueError(f"at most {MAX_SERIES} series fit on one graph, not {len(series)}")
    theme = theme_of(options)
    heading = f"{title}, {period_text(since, until)}"
    if indexed:
        heading += ", indexed (first sample = 100)"
    fig = new_figure(options, theme, heading)
    ax = fig.add_subplot()
    style_axes(ax, theme, since, until, options)
    colours = len(theme.palette)
    inside = [in_period(one.points, since, until) for one in series]
    marked = max(map(len, inside), default=0) <= MARKERS_UP_TO
    drawn: Points = []
    for n, (one, points) in enumerate(zip(series, inside, strict=True)):
        colour = theme.palette[n % colours]
        shown, latest = _rebased(points) if indexed else (points, _latest_count(points))
        if not shown:
            _empty_legend_entry(ax, f"{one.label}: {latest}", colour, n)
            continue
        style = LINE_STYLES[(n // colours) % len(LINE_STYLES)]
        label = f"{one.label}: {latest}"
        draw_line(ax, shown, colour, n, label=label, marked=marked, style=style)
        x, y = shown[-1]
        ax.plot(x, y, marker="o", markersize=5, color=colour, clip_on=False, gid=f"latest-{n}")
        drawn.extend(shown)
    if indexed:
        # An index is no count: 99.5 and 100.5 must not both read "100".
        ax.yaxis.set_major_locator(MaxNLocator(nbins="auto", steps=NICE_STEPS, min_n_ticks=3))
        ax.yaxis.set_major_formatter(DecimalFormatter())
    if indexed and drawn:
        ax.axhline(INDEX_BASE, color=theme.muted, linewidth=0.8, linestyle=":", gid="index-base")
    if drawn:
        set_value_limits(ax, [value for _, value in drawn])
    else:
        say(ax, "No samples in this period", theme)
    if series:
        legend_below(fig, ax, theme)
    return fig


# --- pieces of comparisons ------------------------------------------------------------


def _latest_count(points: Points) -> str:
    """The last value with thousands separators, or ``no samples``."""
    return f"{points[-1][1]:,.0f}" if points else "no samples"


def _rebased(points: Points) -> tuple[Points, str]:
    """Points as an index, 100 at the first non-zero value, and the legend's latest value.

    Returns:
        The rebased points and ``index (count)``; no points when there is nothing to divide by.
    """
    base = next((value for _, value in points if value), None)
    if base is None:
        return [], "all zero, no index" if points else "no samples"
    index = [(x, value / base * INDEX_BASE) for x, value in points]
    return index, f"{index[-1][1]:,.1f} ({_latest_count(points)})"


def _empty_legend_entry(ax: Axes, label: str, colour: str, n: int) -> None:
    """A legend line for a series with nothing to draw."""
    ax.plot([], [], color=colour, linewidth=1.8, alpha=0.4, label=label, gid=f"empty-{n}")
