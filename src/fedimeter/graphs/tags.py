"""Hashtag figures: a tag's uses a day as bars with its accounts as a line, or instances compared.

A server reports a tag per UTC day, so these figures take a range of days (``first`` to
``last``, both shown) rather than moments: each day is a bar centred on its date's tick. The
day in progress (``complete`` false on the period's last day) is drawn apart, pale and
hatched, labelled "so far", so it never reads as a drop; an older incomplete day (the server
answered no more after it) is pale with a dashed outline, "read until" its last reading; a
day no answer covered is shaded "not recorded" and the lines stop
there, so it never reads as a zero. Names come from servers: every text is drawn as it is,
never as mathematics.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Literal, Protocol, get_args

from matplotlib.collections import PolyCollection
from matplotlib.colors import to_rgb
from matplotlib.patches import Rectangle
from matplotlib.text import Annotation
from matplotlib.transforms import Bbox

from fedimeter.graphs.drawing import (
    MARKERS_UP_TO,
    NoonLocator,
    label_value,
    legend_below,
    new_figure,
    num,
    renderer_of,
    say,
    style_axes,
    theme_of,
)
from fedimeter.graphs.options import MAX_SERIES

if TYPE_CHECKING:
    from collections.abc import Sequence

    from matplotlib.axes import Axes
    from matplotlib.backend_bases import RendererBase
    from matplotlib.figure import Figure

    from fedimeter.graphs.options import GraphOptions, Theme

__all__ = [
    "TAG_METRICS",
    "TagDayLike",
    "TagMetric",
    "TagSeries",
    "tag_comparison_figure",
    "tag_days_figure",
]

TagMetric = Literal["uses", "accounts"]
TAG_METRICS: tuple[TagMetric, ...] = get_args(TagMetric)

BAR_SHARE = 0.8  # of a day a bar covers: the rest is the gap that tells days apart
THIN_DAY_PX = 4.0  # a day narrower than this many pixels gets a bar as wide as the day
IN_PROGRESS_FILL = 0.3  # share of the colour in the pale fill of the day in progress
NOT_RECORDED_ALPHA = 0.14  # how strongly a day without an answer is shaded
HATCH = "////"
VALUE_AIR = 1.15  # the value axis reaches a little above the tallest bar
HALF_DAY = timedelta(hours=12)
LABEL_PAD_PX = 4.0  # points between the newest bar's label and the axes' right edge
#: A figure less tall has no room for the legend of a tag's days: its bars would be squeezed
#: flat. The "so far" label still marks the day in progress.
LEGEND_MIN_HEIGHT_PX = 250
LINE_STYLES = ("-", "--", "-.")  # as in account comparisons, once the palette runs out

SO_FAR = "day in progress (so far)"
#: An older day left incomplete: its last reading was in progress and none came after it.
INCOMPLETE = "incomplete: read until"
INCOMPLETE_DASHES = (0, (3, 2))  # the outline of an incomplete day's bar
INCOMPLETE_MARKER = "s"  # its value in a line: an open square (the day in progress: a circle)
NO_DAY = "No day recorded in this period"
NOT_RECORDED = "not recorded"


class TagDayLike(Protocol):
    """One UTC day of a tag on one server, as ``/api/v1/tags/:name`` reports it."""

    @property
    def day(self) -> date:
        """The UTC day."""

    @property
    def uses(self) -> int:
        """Posts that used the tag that day."""

    @property
    def accounts(self) -> int:
        """Accounts that used it that day."""

    @property
    def complete(self) -> bool:
        """False for the server's newest day, still counting when it answered.

        Only the period's last day is then in progress: an older one stayed incomplete because
        no answer came after it (it is "read until" its ``updated_at``, when the day has one).
        """


@dataclass(frozen=True, slots=True)
class TagSeries:
    """One instance's days of a tag in a comparison, labelled with its host."""

    label: str
    days: Sequence[TagDayLike]


def tag_days_figure(
    name: str,
    host: str,
    days: Sequence[TagDayLike],
    *,
    first: date,
    last: date,
    options: GraphOptions,
    today: date | None = None,
) -> Figure:
    """Build a tag's uses a day (bars) and accounts a day (a line) on one instance.

    Days outside ``first`` to ``last`` are left out. A day missing between two recorded ones
    is shaded "not recorded" and the accounts line stops at it; the day in progress (an
    incomplete ``last`` day) is a pale hatched bar with an open dot for its accounts, not
    joined to the line; an older incomplete day a pale bar outlined in dashes, its accounts
    an open square, "read until" its ``updated_at``. The newest bar is
    labelled with its uses (``so far`` while in progress); a legend under the axes says what
    each mark is (when the figure is at least ``LEGEND_MIN_HEIGHT_PX`` tall).

    Returns:
        A new ``Figure`` with one axes; with no day in the period, one that says so.

    Raises:
        ValueError: ``first`` after ``last``.
    """
    _check_days(first, last)
    today = last if today is None else today
    theme = theme_of(options)
    # The legend says what is drawn: the title has room for a long name on a narrow graph.
    fig = new_figure(options, theme, f"#{name} on {host}, {_days_text(first, last)}")
    ax = fig.add_subplot()
    _style(ax, theme, first, last, options)
    shown = _shown(days, first, last)
    if not shown:
        say(ax, NO_DAY, theme)
        _shade_not_recorded(ax, shown, first, last, theme)
        return fig
    uses_colour, accounts_colour = theme.palette[0], theme.palette[1]
    day_px = options.width_px * 0.9 / ((last - first).days + 1)
    _draw_bars(ax, shown, uses_colour, theme, day_px=day_px, today=today)
    _draw_daily_line(
        ax,
        shown,
        "accounts",
        accounts_colour,
        theme,
        n=0,
        label="accounts a day",
        marked=len(shown) <= MARKERS_UP_TO,
        today=today,
    )
    _shade_not_recorded(ax, shown, first, last, theme)
    newest = shown[-1]
    text = f"{newest.uses:,}"
    if _in_progress(newest, today):
        text = f"{newest.uses:,} so far"
    elif not newest.complete:
        text = f"{newest.uses:,} until {_read_until(newest)}"
    low, high = ax.get_xlim()
    right = _centre(newest.day) + _bar_width(day_px) / 2
    label_value(
        ax,
        (min(max(right, low), high), newest.uses),
        text,
        colour=uses_colour,
        theme=theme,
        offset=(5, 0),
    )
    top = max(max(day.uses, day.accounts) for day in shown)
    ax.set_ylim(0, max(1, top) * VALUE_AIR)
    if len(shown) == 1:
        say(ax, "Only one day in this period: a trend needs two.", theme, above=True)
    if options.height_px >= LEGEND_MIN_HEIGHT_PX:
        legend_below(fig, ax, theme)
    _keep_label_inside(fig, ax, last)
    return fig


def tag_comparison_figure(
    name: str,
    series: Sequence[TagSeries],
    metric: TagMetric,
    *,
    first: date,
    last: date,
    options: GraphOptions,
    today: date | None = None,
) -> Figure:
    """Build one figure of a tag a day on several instances: one line each.

    A line stops where a day was not recorded. The day in progress (an incomplete ``last``
    day, or ``today``) is an open dot of the line's colour, not joined to it; an older
    incomplete day an open square. The legend gives each instance's newest complete day
    (and its day so far).

    Returns:
        A new ``Figure`` with one axes and a legend below it.

    Raises:
        ValueError: an unknown metric, more than ``MAX_SERIES`` series, or ``first`` after
            ``last``.
    """
    _check_days(first, last)
    if metric not in TAG_METRICS:
        raise ValueError(f"metric must be one of {', '.join(TAG_METRICS)}, not {metric!r}")
    if len(series) > MAX_SERIES:
        raise ValueError(f"at most {MAX_SERIES} series fit on one graph, not {len(series)}")
    today = last if today is None else today
    theme = theme_of(options)
    places = f"{len(series)} instance{'s' * (len(series) != 1)}"
    fig = new_figure(
        options, theme, f"#{name} — {metric} a day on {places}, {_days_text(first, last)}"
    )
    ax = fig.add_subplot()
    _style(ax, theme, first, last, options)
    shown = [_shown(one.days, first, last) for one in series]
    marked = max(map(len, shown), default=0) <= MARKERS_UP_TO
    colours = len(theme.palette)
    top = 0
    for n, (one, days) in enumerate(zip(series, shown, strict=True)):
        colour = theme.palette[n % colours]
        style = LINE_STYLES[(n // colours) % len(LINE_STYLES)]
        label = f"{one.label}: {_latest_text(days, metric, today)}"
        if days:
            _draw_daily_line(
                ax,
                days,
                metric,
                colour,
                theme,
                n=n,
                label=label,
                marked=marked,
                style=style,
                today=today,
            )
            top = max(top, *(int(getattr(day, metric)) for day in days))
        else:
            ax.plot([], [], color=colour, linewidth=1.8, alpha=0.4, label=label, gid=f"empty-{n}")
    if not any(shown):
        say(ax, NO_DAY, theme)
    else:
        ax.set_ylim(0, max(1, top) * VALUE_AIR)
    every = [day for days in shown for day in days]
    if any(_in_progress(day, today) for day in every):
        ax.plot(
            [],
            [],
            linestyle="none",
            marker="o",
            markersize=5,
            markerfacecolor=theme.background,
            markeredgecolor=theme.muted,
            label=SO_FAR,
            gid="so-far-key",
        )
    stale = [day for day in every if _stale(day, today)]
    if stale:
        ax.plot(
            [],
            [],
            linestyle="none",
            marker=INCOMPLETE_MARKER,
            markersize=5,
            markerfacecolor=theme.background,
            markeredgecolor=theme.muted,
            markeredgewidth=1.4,
            label=_incomplete_text(stale),
            gid="incomplete-key",
        )
    if series:
        legend_below(fig, ax, theme)
    return fig


# --- pieces -----------------------------------------------------------------------------------


def _check_days(first: date, last: date) -> None:
    if first > last:
        raise ValueError(f"the first day ({first}) must not be after the last ({last})")


def _days_text(first: date, last: date) -> str:
    """``2026-03-01 to 2026-03-31``, or the one day."""
    return f"{first:%Y-%m-%d}" if first == last else f"{first:%Y-%m-%d} to {last:%Y-%m-%d}"


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def _centre(day: date) -> float:
    """Where a day is drawn: at its noon, on its date's tick, its bar half a day either side."""
    return num(_midnight(day)) + 0.5


def _style(ax: Axes, theme: Theme, first: date, last: date, options: GraphOptions) -> None:
    """The shared axes over whole days, ticks at their noons (one day shows its day, no hours).

    From the midnight that starts ``first`` to the one that ends ``last``.
    """
    style_axes(ax, theme, _midnight(first), _midnight(last) + HALF_DAY, options, days=True)
    # The midnight after 9999-12-31 is no datetime: the end is set as a date number.
    ax.set_xlim(_centre(first) - 0.5, _centre(last) + 0.5)


def _shown(days: Sequence[TagDayLike], first: date, last: date) -> list[TagDayLike]:
    """The days from ``first`` to ``last``, oldest first."""
    return sorted((day for day in days if first <= day.day <= last), key=lambda day: day.day)


def _keep_label_inside(fig: Figure, ax: Axes, last: date) -> None:
    """Widen the time axis past ``last`` until the newest bar's label fits inside the axes.

    Beside the bar of the period's last day, "7 so far" ran over the axes' right edge (and,
    in an SVG, touched the plot's). The room added is no day: no tick, no shading. A label
    that reaches under the axis (a low bar's) or over its top is moved up or down.
    """
    (label,) = [text for text in ax.texts if text.get_gid() == "latest"]
    if not isinstance(label, Annotation):
        return
    label.set_in_layout(False)  # inside the axes, it takes no margin of its own
    locator = ax.xaxis.get_major_locator()
    if isinstance(locator, NoonLocator):
        locator.end = _centre(last) + 0.5
    renderer = renderer_of(fig)
    for _ in range(2):  # the second pass only corrects for a layout moved by the first
        engine = fig.get_layout_engine()
        if engine is not None:
            engine.execute(fig)
        box = _extent(label, renderer)
        width, pad = ax.bbox.width, LABEL_PAD_PX * fig.dpi / 72
        low = ax.get_xlim()[0]
        # How far the label reaches right of its point, in pixels.
        beyond = box.x1 - ax.transData.transform((label.xy[0], 0))[0]
        if box.x1 <= ax.bbox.x1 - pad or width - pad - beyond <= 0:
            break
        ax.set_xlim(low, low + (label.xy[0] - low) * width / (width - pad - beyond))
    # A low bar's label reached under the axis, a high one's over the top: moved up or down.
    box = _extent(label, renderer)
    up = max(0.0, ax.bbox.y0 + pad - box.y0) - max(0.0, box.y1 - (ax.bbox.y1 - pad))
    x, y = label.xyann
    label.xyann = (x, y + up * 72 / fig.dpi)


def _extent(label: Annotation, renderer: RendererBase) -> Bbox:
    """Where the label and its box are, in pixels: both are only placed when drawn."""
    label.update_positions(renderer)
    box = label.get_window_extent(renderer)
    patch = label.get_bbox_patch()
    if patch is None:
        return box
    label.update_bbox_position_size(renderer)
    return Bbox.union([box, patch.get_window_extent(renderer)])


def _in_progress(day: TagDayLike, today: date) -> bool:
    """The day still counting: incomplete, and ``today`` (by default the period's last day)."""
    return not day.complete and day.day == today


def _stale(day: TagDayLike, today: date) -> bool:
    """An older day left incomplete: no answer came after its last reading."""
    return not day.complete and day.day != today


def _read_until(day: TagDayLike) -> str:
    """When an incomplete day was last read: ``03:00`` (UTC), ``Nov 26 00:10`` on a later day.

    ``updated_at`` is the storage layer's; a day without one says "its last reading".
    """
    moment = getattr(day, "updated_at", None)
    if not isinstance(moment, datetime):
        return "its last reading"
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if moment.date() == day.day:
        return f"{moment:%H:%M}"
    return f"{moment:%Y-%m-%d %H:%M}"


def _incomplete_text(days: Sequence[TagDayLike]) -> str:
    """The legend of older incomplete days: ``incomplete: read until 03:00`` (UTC)."""
    times = list(dict.fromkeys(_read_until(day) for day in days))
    shown = ", ".join(times) if len(times) <= 2 else "each one's last reading"  # noqa: PLR2004
    return f"{INCOMPLETE} {shown}"


def _bar_width(day_px: float) -> float:
    """A bar's width in days: the whole day when days are too thin for a gap between them."""
    return 1.0 if day_px < THIN_DAY_PX else BAR_SHARE


def _draw_bars(
    ax: Axes,
    days: Sequence[TagDayLike],
    colour: str,
    theme: Theme,
    *,
    day_px: float,
    today: date,
) -> None:
    """One bar a day of the tag's uses; the day in progress pale and hatched.

    An older incomplete day (gid ``day-incomplete``) is pale with a dashed outline and no
    hatch: neither a whole day nor one still counting. Complete days are one collection (gid
    ``days``): years of days as separate patches would take most of the render. Bars never
    push the layout.
    """
    width = _bar_width(day_px)
    thin = day_px < THIN_DAY_PX
    done = [day for day in days if day.complete]
    ax.add_collection(
        PolyCollection(
            [_box(_centre(day.day) - width / 2, width, day.uses) for day in done],
            facecolors=colour,
            edgecolors="none",
            linewidths=0,
            antialiaseds=not thin,
            gid="days",
            label="uses a day",
            in_layout=False,
        ),
        autolim=False,
    )
    for n, day in enumerate(d for d in days if _in_progress(d, today)):
        ax.add_artist(
            Rectangle(
                (_centre(day.day) - width / 2, 0),
                width,
                day.uses,
                facecolor=_pale(colour, theme),
                edgecolor=colour,
                linewidth=0.8,
                hatch=HATCH,
                gid="day-in-progress",
                label="_nolegend_" if n else SO_FAR,
                in_layout=False,
            )
        )
    stale = [day for day in days if _stale(day, today)]
    for n, day in enumerate(stale):
        ax.add_artist(
            Rectangle(
                (_centre(day.day) - width / 2, 0),
                width,
                day.uses,
                facecolor=_pale(colour, theme),
                edgecolor=colour,
                linewidth=1.0,
                linestyle=INCOMPLETE_DASHES,
                gid="day-incomplete",
                label="_nolegend_" if n else _incomplete_text(stale),
                in_layout=False,
            )
        )


def _draw_daily_line(
    ax: Axes,
    days: Sequence[TagDayLike],
    metric: str,
    colour: str,
    theme: Theme,
    *,
    n: int,
    label: str,
    marked: bool,
    today: date,
    style: str = "-",
) -> None:
    """A line through the complete days, broken where a day is missing; the rest open marks.

    Each run of consecutive complete days is a ``Line2D`` with gid ``data-<n>-<run>``; a day
    in progress is an open dot (gid ``so-far-<n>``), an older incomplete day an open square
    (gid ``incomplete-<n>``): joined to the line, either would look like a fall.
    """
    runs: list[list[TagDayLike]] = []
    for day in (d for d in days if d.complete):
        if runs and (day.day - runs[-1][-1].day).days == 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    for r, run in enumerate(runs):
        ax.plot(
            [_centre(day.day) for day in run],
            [int(getattr(day, metric)) for day in run],
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
    labelled = bool(runs)
    for marker, gid, partial in (
        ("o", f"so-far-{n}", [day for day in days if _in_progress(day, today)]),
        (INCOMPLETE_MARKER, f"incomplete-{n}", [day for day in days if _stale(day, today)]),
    ):
        if not partial:
            continue
        ax.plot(
            [_centre(day.day) for day in partial],
            [int(getattr(day, metric)) for day in partial],
            linestyle="none",
            marker=marker,
            markersize=5,
            markerfacecolor=theme.background,
            markeredgecolor=colour,
            markeredgewidth=1.4,
            gid=gid,
            label="_nolegend_" if labelled else label,
        )
        labelled = True


def _shade_not_recorded(
    ax: Axes, days: Sequence[TagDayLike], first: date, last: date, theme: Theme
) -> None:
    """Shade each stretch of the period's days without a stored day (gid ``not-recorded``).

    Every one, before the first stored day and after the last too: the tag's page lists each
    as "not recorded", and a blank stretch would read as no use rather than no answer.
    """
    # Day numbers: the day before date.min and the one after date.max are no dates.
    edges = [first.toordinal() - 1, *(day.day.toordinal() for day in days), last.toordinal() + 1]
    labelled = False
    for before, after in itertools.pairwise(edges):
        missing = after - before - 1
        if missing < 1:
            continue
        # From the first missing day's left edge (half a day before its midnight) on.
        start = _centre(date.fromordinal(before + 1)) - 0.5
        ax.axvspan(
            start,
            start + missing,
            facecolor=theme.muted,
            edgecolor="none",
            alpha=NOT_RECORDED_ALPHA,
            zorder=0.4,
            gid="not-recorded",
            label="_nolegend_" if labelled else NOT_RECORDED,
        )
        labelled = True


def _latest_text(days: Sequence[TagDayLike], metric: str, today: date) -> str:
    """``1,234 on 2026-03-09, 56 so far``: the newest complete day and the day in progress."""
    done = [day for day in days if day.complete]
    going = [day for day in days if _in_progress(day, today)]
    parts = []
    if done:
        parts.append(f"{int(getattr(done[-1], metric)):,} on {done[-1].day:%Y-%m-%d}")
    if going:
        parts.append(f"{int(getattr(going[-1], metric)):,} so far")
    return ", ".join(parts) or "no day recorded"


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
