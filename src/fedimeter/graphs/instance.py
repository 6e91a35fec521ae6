"""Instance figures: users or statuses over time, and weekly activity as bars.

They read anything shaped like ``InstanceSampleLike`` and ``WeekLike`` (see ``options``), so
the storage layer can pass its records as they are. The look is the account figures' look.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING

from matplotlib.collections import PolyCollection
from matplotlib.colors import to_rgb
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.patches import Patch, Rectangle

from fedimeter.graphs.drawing import (
    CountLocator,
    check_period,
    draw_counts,
    in_period,
    label_value,
    new_figure,
    num,
    panel_title,
    period_text,
    renderer_of,
    say,
    style_axes,
    theme_of,
)
from fedimeter.graphs.options import INSTANCE_METRICS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.legend import Legend

    from fedimeter.graphs.options import (
        GraphOptions,
        InstanceMetric,
        InstanceSampleLike,
        Theme,
        WeekLike,
    )

__all__ = ["ACTIVITY", "instance_metric_figure", "weekly_activity_figure"]

#: The panels of the weekly activity figure, top to bottom: what each counts per week.
ACTIVITY = ("statuses", "logins", "registrations")
WEEK = timedelta(days=7)
BAR_SHARE = 0.8  # of a week a bar covers: the rest is the gap that tells weeks apart
IN_PROGRESS = "week in progress"
IN_PROGRESS_FILL = 0.3  # share of the colour in the pale fill of the week in progress
HATCH = "////"
VALUE_AIR = 1.12  # the value axis reaches a little above the tallest bar
PANEL_PAD = 6 / 72  # inches above and below each panel, and at the top and bottom edges
THIN_WEEK_PX = 4.0  # a week narrower than this many pixels is drawn without a gap


def instance_metric_figure(
    host: str,
    metric: InstanceMetric,
    samples: Sequence[InstanceSampleLike],
    *,
    since: datetime,
    until: datetime,
    options: GraphOptions,
) -> Figure:
    """Build an instance's users or statuses over ``since`` to ``until``.

    Samples outside the period are left out; with none the figure says so, with one it shows
    the point, its value and a note.

    Returns:
        A new ``Figure`` with one axes, ready to encode.

    Raises:
        ValueError: an unknown metric, naive times, or ``since`` not before ``until``.
    """
    check_period(since, until)
    if metric not in INSTANCE_METRICS:
        raise ValueError(f"metric must be one of {', '.join(INSTANCE_METRICS)}, not {metric!r}")
    theme = theme_of(options)
    fig = new_figure(options, theme, f"{host} — {metric}, {period_text(since, until)}")
    ax = fig.add_subplot()
    style_axes(ax, theme, since, until, options)
    points = in_period(
        ((s.taken_at, s.users if metric == "users" else s.statuses) for s in samples),
        since,
        until,
    )
    draw_counts(ax, points, host, theme.palette[0 if metric == "users" else 1], theme)
    return fig


def weekly_activity_figure(
    host: str,
    weeks: Sequence[WeekLike],
    *,
    since: datetime,
    until: datetime,
    options: GraphOptions,
) -> Figure:
    """Build an instance's statuses, logins and registrations per week, one panel each.

    Weeks that overlap ``since`` to ``until`` are drawn as bars over their seven days; the week
    in progress (``complete`` false) is hatched and pale, and a legend says what that means.
    Each panel labels its latest week's value (``so far`` while it is in progress).

    Returns:
        A new ``Figure`` with three axes sharing the time axis, statuses first; with no week
        in the period, one axes that says so.

    Raises:
        ValueError: naive times, or ``since`` not before ``until``.
    """
    check_period(since, until)
    theme = theme_of(options)
    fig = new_figure(options, theme, f"{host} — weekly activity, {period_text(since, until)}")
    shown = sorted(
        (week for week in weeks if _overlaps(_start(week), since, until)),
        key=_start,
    )
    if not shown:
        ax = fig.add_subplot()
        style_axes(ax, theme, since, until, options)
        say(ax, f"No weekly activity yet for {host} in this period", theme)
        return fig
    # The axes cover about nine tenths of the width: close enough to choose a bar style.
    week_px = options.width_px * 0.9 * (WEEK / (until - since))
    panels = [fig.add_subplot(len(ACTIVITY), 1, n + 1) for n in range(len(ACTIVITY))]
    # Three panels share the height: the usual padding around each would take a fifth of it.
    engine = fig.get_layout_engine()
    if isinstance(engine, ConstrainedLayoutEngine):
        engine.set(h_pad=PANEL_PAD, hspace=0.0)
    for n, (ax, field) in enumerate(zip(panels, ACTIVITY, strict=True)):
        if n:
            ax.sharex(panels[0])
        style_axes(ax, theme, since, until, options)
        # A third of the height is short: two value ticks rather than three that collide.
        ax.yaxis.set_major_locator(CountLocator(min_n_ticks=2))
        panel_title(ax, f"{field} per week", theme)
        _draw_weeks(ax, shown, field, theme.palette[n], theme, week_px=week_px)
        if n < len(ACTIVITY) - 1:
            ax.tick_params(axis="x", labelbottom=False)
            ax.xaxis.get_offset_text().set_visible(False)
    if len(shown) == 1:
        say(panels[0], "Only one week in this period: a trend needs two.", theme, y=0.85)
    if not all(week.complete for week in shown):
        _in_progress_legend(fig, theme)
    return fig


# --- pieces -----------------------------------------------------------------------------------


def _start(week: WeekLike) -> datetime:
    """The week's first moment in UTC.

    Raises:
        ValueError: a ``datetime`` start without a time zone.
    """
    start = week.start
    if isinstance(start, datetime):
        if start.tzinfo is None:
            raise ValueError(f"week start {start.isoformat()} has no time zone")
        return start.astimezone(UTC)
    return datetime.combine(start, time.min, tzinfo=UTC)


def _overlaps(start: datetime, since: datetime, until: datetime) -> bool:
    """Whether the week from ``start`` shares any moment with the period."""
    return start < until and start + WEEK > since


def _draw_weeks(
    ax: Axes,
    weeks: Sequence[WeekLike],
    field: str,
    colour: str,
    theme: Theme,
    *,
    week_px: float,
) -> None:
    """One bar a week, the week in progress hatched, the latest value labelled.

    A week narrower than ``THIN_WEEK_PX`` on the page (years of weeks) gets a bar as wide as
    the week, without edges or antialiasing: gaps of a pixel or less would draw a moire.
    """
    thin = week_px < THIN_WEEK_PX
    days = WEEK / timedelta(days=1)
    width = days if thin else days * BAR_SHARE
    margin = (days - width) / 2
    lefts = [num(_start(week)) + margin for week in weeks]
    values = [int(getattr(week, field)) for week in weeks]
    # Complete weeks are one collection (gid ``weeks``): ten years of bars as separate patches
    # took most of the render time. It is added without growing the data limits, which are
    # set here anyway. The few weeks in progress are rectangles of their own.
    # Bars are clipped to the axes and never push the layout (a week may reach past the period).
    done = [n for n, week in enumerate(weeks) if week.complete]
    ax.add_collection(
        PolyCollection(
            [_box(lefts[n], width, values[n]) for n in done],
            facecolors=colour,
            edgecolors="none",
            linewidths=0,
            antialiaseds=not thin,
            gid="weeks",
            in_layout=False,
        ),
        autolim=False,
    )
    for n in (n for n, week in enumerate(weeks) if not week.complete):
        ax.add_artist(
            Rectangle(
                (lefts[n], 0),
                width,
                values[n],
                facecolor=_pale(colour, theme),
                edgecolor=colour,
                linewidth=0.8,
                hatch=HATCH,
                gid="week-in-progress",
                in_layout=False,
            )
        )
    last, value = weeks[-1], values[-1]
    text = f"{value:,}" if last.complete else f"{value:,} so far"
    # Beside the bar's top, like the latest point of a line: above it would cover neighbours.
    # A week reaching past the period is cut at its end; so is the label's anchor.
    low, high = ax.get_xlim()
    anchor = min(max(lefts[-1] + width, low), high)
    label_value(ax, (anchor, value), text, colour=colour, theme=theme, offset=(5, 0))
    ax.set_ylim(0, max(1, *values) * VALUE_AIR)


def _box(left: float, width: float, height: float) -> list[tuple[float, float]]:
    """The corners of a bar standing on zero."""
    return [(left, 0.0), (left, height), (left + width, height), (left + width, 0.0)]


def _pale(colour: str, theme: Theme) -> tuple[float, float, float]:
    """``colour`` mixed into the background: pale, yet opaque, so no grid line shows through."""
    ink, paper = to_rgb(colour), to_rgb(theme.background)
    r, g, b = (
        IN_PROGRESS_FILL * i + (1 - IN_PROGRESS_FILL) * p for i, p in zip(ink, paper, strict=True)
    )
    return r, g, b


def _in_progress_legend(fig: Figure, theme: Theme) -> Legend:
    """A legend entry for the hatched bar of the week still counting.

    It sits at the right of the title when both fit on the title's line, else under the
    time axis.
    """
    swatch = Patch(
        facecolor=_pale(theme.muted, theme),
        edgecolor=theme.muted,
        linewidth=0.8,
        hatch=HATCH,
        label=IN_PROGRESS,
    )
    legend = fig.legend(
        handles=[swatch], loc="outside upper right", frameon=False, fontsize=9, handlelength=1.6
    )
    renderer = renderer_of(fig)
    title = fig.texts[0].get_window_extent(renderer).width
    if title + legend.get_window_extent(renderer).width > fig.bbox.width * 0.95:
        legend.remove()
        legend = fig.legend(
            handles=[swatch], loc="outside lower right", frameon=False, fontsize=9, handlelength=1.6
        )
    legend.set_gid("legend")
    for text in legend.get_texts():
        text.set_color(theme.muted)
    return legend
