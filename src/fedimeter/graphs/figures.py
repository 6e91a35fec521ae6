"""Build matplotlib figures from sample series: objects only, no pyplot, no global state.

Every function here makes a new ``Figure`` and styles each artist itself, so figures built in
several threads at once never see each other. Times are plotted as matplotlib date numbers in
UTC on a real time axis; values keep their gaps (see ``_runs``).
"""

from __future__ import annotations

import itertools
import statistics
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullLocator

from fedimeter.graphs.options import (
    METRICS,
    THEMES,
    GraphOptions,
    Metric,
    SampleLike,
    Series,
    Theme,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from matplotlib.axes import Axes

__all__ = ["combined_figure", "comparison_figure", "metric_figure"]

GAP_FACTOR = 3  # a step longer than 3 median steps is a gap: no line is drawn across it
MARKERS_UP_TO = 60  # points are marked while there are this many or fewer
INDEX_BASE = 100.0
NICE_STEPS = [1, 2, 2.5, 5, 10]  # value ticks at 1, 2, 2.5 or 5 times a power of ten
TITLE_SIZE, MIN_TITLE_SIZE = 13.0, 8.0
LINE_STYLES = ("-", "--", "-.")  # once the palette runs out, colours repeat with these

_VALUE: dict[Metric, Callable[[SampleLike], int]] = {
    "followers": lambda sample: sample.followers,
    "following": lambda sample: sample.following,
    "statuses": lambda sample: sample.statuses,
}

Points = list[tuple[float, float]]  # (matplotlib date number, value), in time order


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
    _check_period(since, until)
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, not {metric!r}")
    theme = _theme(options)
    fig = _new_figure(options, theme, f"{title_handle} — {metric}, {_period(since, until)}")
    ax = fig.add_subplot()
    _style_axes(ax, theme, since, until, options)
    value = _VALUE[metric]
    points = _in_period(((s.taken_at, value(s)) for s in samples), since, until)
    _draw_counts(ax, points, title_handle, theme.palette[0], theme)
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
    _check_period(since, until)
    theme = _theme(options)
    title = f"{title_handle} — followers and statuses, {_period(since, until)}"
    fig = _new_figure(options, theme, title)
    top = fig.add_subplot(2, 1, 1)
    bottom = fig.add_subplot(2, 1, 2, sharex=top)
    metrics: tuple[Metric, Metric] = ("followers", "statuses")
    for n, (ax, metric) in enumerate(zip((top, bottom), metrics, strict=True)):
        _style_axes(ax, theme, since, until, options)
        ax.set_title(metric, loc="left", fontsize=10, color=theme.muted, pad=4)
        value = _VALUE[metric]
        points = _in_period(((s.taken_at, value(s)) for s in samples), since, until)
        _draw_counts(ax, points, title_handle, theme.palette[n], theme)
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
        ValueError: naive times, or ``since`` not before ``until``.
    """
    _check_period(since, until)
    theme = _theme(options)
    heading = f"{title}, {_period(since, until)}"
    if indexed:
        heading += ", indexed (first sample = 100)"
    fig = _new_figure(options, theme, heading)
    ax = fig.add_subplot()
    _style_axes(ax, theme, since, until, options)
    colours = len(theme.palette)
    inside = [_in_period(one.points, since, until) for one in series]
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
        _draw_line(ax, shown, colour, n, label=label, marked=marked, style=style)
        x, y = shown[-1]
        ax.plot(x, y, marker="o", markersize=5, color=colour, clip_on=False, gid=f"latest-{n}")
        drawn.extend(shown)
    if indexed and drawn:
        ax.axhline(INDEX_BASE, color=theme.muted, linewidth=0.8, linestyle=":", gid="index-base")
    if drawn:
        _set_value_limits(ax, [value for _, value in drawn])
    else:
        _say(ax, "No samples in this period", theme)
    if series:
        columns = max(1, min(len(series), 3, options.width_px // 300))
        legend = fig.legend(loc="outside lower center", ncols=columns, frameon=False, fontsize=9)
        for text in legend.get_texts():
            text.set_color(theme.text)
            text.set_parse_math(False)
    return fig


# --- pieces ---------------------------------------------------------------------------------


def _check_period(since: datetime, until: datetime) -> None:
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("since and until must be timezone-aware")
    if since >= until:
        raise ValueError(f"since ({since.isoformat()}) must be before until ({until.isoformat()})")


def _theme(options: GraphOptions) -> Theme:
    return THEMES[options.theme]


def _num(moment: datetime) -> float:
    """The matplotlib date number of an aware datetime (days since the epoch, UTC)."""
    return float(date2num(moment.astimezone(UTC)))  # type: ignore[no-untyped-call]


def _in_period(points: Iterable[tuple[datetime, int]], since: datetime, until: datetime) -> Points:
    """The points from ``since`` to ``until`` inclusive, as date numbers, sorted by time.

    Raises:
        ValueError: a point with a naive time.
    """
    kept: Points = []
    for moment, value in points:
        if moment.tzinfo is None:
            raise ValueError(f"sample time {moment.isoformat()} has no time zone")
        if since <= moment <= until:
            kept.append((_num(moment), float(value)))
    kept.sort()
    return kept


def _period(since: datetime, until: datetime) -> str:
    """``2026-01-01 to 2026-03-31``, with hours and minutes when either end is not midnight."""
    start, end = since.astimezone(UTC), until.astimezone(UTC)
    if all(t.hour == t.minute == t.second == t.microsecond == 0 for t in (start, end)):
        return f"{start:%Y-%m-%d} to {end:%Y-%m-%d}"
    return f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"


def _new_figure(options: GraphOptions, theme: Theme, title: str) -> Figure:
    pad = 10 / 72  # inches around the edge and between panels
    fig = Figure(
        figsize=options.figure_inches,
        dpi=options.dpi,
        facecolor=theme.background,
        layout=ConstrainedLayoutEngine(w_pad=pad, h_pad=pad, hspace=0.04),
    )
    fig.suptitle(
        title,
        x=0.01,
        ha="left",
        fontsize=TITLE_SIZE,
        fontweight="bold",
        color=theme.text,
        parse_math=False,
    )
    _fit_title(fig)
    return fig


def _fit_title(fig: Figure) -> None:
    """Break a title too wide for the figure before its period, then shrink it if need be."""
    title = fig.get_suptitle()
    text = fig.texts[-1]
    renderer = FigureCanvasAgg(fig).get_renderer()  # type: ignore[no-untyped-call]
    room = fig.bbox.width * 0.97
    if text.get_window_extent(renderer).width <= room:
        return
    head, comma, period = title.rpartition(", ")
    if comma:
        text.set_text(f"{head},\n{period}")
    width = text.get_window_extent(renderer).width
    if width > room:
        text.set_fontsize(max(MIN_TITLE_SIZE, TITLE_SIZE * room / width))


def _style_axes(
    ax: Axes, theme: Theme, since: datetime, until: datetime, options: GraphOptions
) -> None:
    """Colours, grid, a UTC date axis over the period and a thousands-separated value axis."""
    ax.set_facecolor(theme.background)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(theme.axis)
    ax.tick_params(colors=theme.axis, labelcolor=theme.muted, labelsize=9, length=3)
    ax.grid(visible=True, color=theme.grid, linewidth=0.8)
    ax.set_axisbelow(True)
    # About one date label per inch and a quarter: short enough never to collide.
    most = max(3, int(options.width_px / 125))
    locator = AutoDateLocator(tz=UTC, minticks=3, maxticks=most)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(
        ConciseDateFormatter(locator, tz=UTC, show_offset=True)  # type: ignore[no-untyped-call]
    )
    offset = ax.xaxis.get_offset_text()
    offset.set_color(theme.muted)
    offset.set_fontsize(9)
    ax.set_xlim(_num(since), _num(until))
    ax.yaxis.set_major_locator(
        MaxNLocator(nbins="auto", steps=NICE_STEPS, integer=True, min_n_ticks=3)
    )
    ax.yaxis.set_major_formatter(FuncFormatter(_thousands))


def _thousands(value: float, _position: int | None = None) -> str:
    """``12,345``; ``+ 0`` turns the ``-0`` of a tick just under zero into ``0``."""
    return f"{round(value) + 0:,}"


def _runs(xs: Sequence[float]) -> list[range]:
    """Split point indices where a step is longer than GAP_FACTOR median steps.

    Samples come on a schedule; a step much longer than usual means collection stopped, and
    a line across it would invent values. Fewer than three points are one run.
    """
    if len(xs) < 3:  # noqa: PLR2004 - two steps are needed for a median that means anything
        return [range(len(xs))]
    steps = [b - a for a, b in itertools.pairwise(xs)]
    longest = max(GAP_FACTOR * statistics.median(steps), 1 / (24 * 60))  # at least a minute
    runs, start = [], 0
    for n, step in enumerate(steps, start=1):
        if step > longest:
            runs.append(range(start, n))
            start = n
    runs.append(range(start, len(xs)))
    return runs


def _draw_line(
    ax: Axes, points: Points, colour: str, n: int, *, label: str, marked: bool, style: str = "-"
) -> None:
    """Draw a series as lines between close samples, with dotted hints across the gaps.

    Each run is a ``Line2D`` with gid ``data-<n>-<run>``; together they hold every point once.
    Points are ``marked`` with dots, as are lone points between two gaps.
    """
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    for r, run in enumerate(_runs(xs)):
        if r:
            before = run.start - 1
            ax.plot(
                [xs[before], xs[run.start]],
                [ys[before], ys[run.start]],
                color=colour,
                linewidth=1.0,
                linestyle=(0, (1, 3)),
                alpha=0.7,
                gid=f"gap-{n}-{r}",
            )
        ax.plot(
            xs[run.start : run.stop],
            ys[run.start : run.stop],
            color=colour,
            linewidth=1.8,
            linestyle=style,
            marker="o" if marked or len(run) == 1 else "",
            markersize=3.5,
            markeredgewidth=0,
            gid=f"data-{n}-{r}",
            label=label if r == 0 else "_nolegend_",
            solid_joinstyle="round",
        )


def _draw_counts(ax: Axes, points: Points, handle: str, colour: str, theme: Theme) -> None:
    """Draw one account's metric, label its latest value, or say why there is nothing."""
    if not points:
        _say(ax, f"No samples yet for {handle} in this period", theme)
        return
    _draw_line(ax, points, colour, 0, label=handle, marked=len(points) <= MARKERS_UP_TO)
    x, y = points[-1]
    ax.plot(
        [x],
        [y],
        marker="o",
        markersize=6,
        color=colour,
        markeredgecolor=theme.background,
        markeredgewidth=1.2,
        clip_on=False,
        gid="latest-marker",
    )
    ax.annotate(
        f"{y:,.0f}",
        xy=(x, y),
        xytext=(8, 0),
        textcoords="offset points",
        ha="left",
        va="center",
        fontsize=10,
        fontweight="bold",
        color=theme.text,
        bbox={
            "boxstyle": "round,pad=0.3",
            "facecolor": theme.background,
            "edgecolor": colour,
            "linewidth": 1.0,
        },
        annotation_clip=False,
        gid="latest",
    )
    _set_value_limits(ax, [value for _, value in points])
    if len(points) == 1:
        _say(ax, "Only one sample in this period: a trend needs two.", theme, y=0.92)


def _set_value_limits(ax: Axes, values: Sequence[float]) -> None:
    """Fit the value axis to the data with some air; counts never get a negative axis."""
    low, high = min(values), max(values)
    air = (high - low) * 0.12 if high > low else max(1.0, abs(high) * 0.05)
    bottom = low - air
    if low >= 0 > bottom:
        bottom = 0.0
    ax.set_ylim(bottom, high + air)


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


def _say(ax: Axes, message: str, theme: Theme, *, y: float = 0.5) -> None:
    """Write a note in the middle of the axes (gid ``note``); alone, it hides the value axis."""
    ax.text(
        0.5,
        y,
        message,
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=12 if y == 0.5 else 10,  # noqa: PLR2004 - the centre
        color=theme.muted,
        parse_math=False,
        gid="note",
    )
    if not ax.lines:
        ax.yaxis.set_major_locator(NullLocator())
        ax.set_ylim(0, 1)
