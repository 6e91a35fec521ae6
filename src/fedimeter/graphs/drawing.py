"""The drawing pieces every graph shares: figure, title, date axis, gapped lines, labels, notes.

Internal to ``fedimeter.graphs``. Each function styles the artists it makes itself (objects
only, no pyplot, no rcParams), so figures built in several threads at once never see each
other. Times are matplotlib date numbers in UTC.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import statistics
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, date2num, num2date
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties, get_font
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.ticker import Formatter, FuncFormatter, Locator, MaxNLocator, NullLocator
from matplotlib.transforms import offset_copy

from fedimeter.graphs.options import THEMES, GraphOptions, Theme

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.backend_bases import RendererBase
    from matplotlib.legend import Legend
    from matplotlib.text import Text

GAP_FACTOR = 3  # a step longer than 3 median steps is a gap: no line is drawn across it
MARKERS_UP_TO = 60  # points are marked while there are this many or fewer
NICE_STEPS = [1, 2, 2.5, 5, 10]  # value ticks at 1, 2, 2.5 or 5 times a power of ten
TITLE_SIZE, MIN_TITLE_SIZE = 13.0, 8.0
LEGEND_SIZES = (9.0, 8.0, 7.0)  # legend font sizes tried in turn until the legend fits
LEGEND_COLUMNS = 4  # at most; more columns make rows hard to follow
LEGEND_HEIGHT_SHARE = 0.3  # a legend taller than this share of the plot gets a smaller font
TIME_AXIS_PT = 30  # about what the date labels and their offset take under the axes
SHORTEST_NAME = 16  # characters of a name kept when shortening it buys a legend more columns
ELLIPSIS = "…"
EXACT = 1e-9  # a tick this close to a label's value is shown exactly by it

#: Fonts tried after DejaVu Sans, glyph by glyph, for names in other scripts: those installed
#: (fonts-noto-cjk on Debian gives the Noto Sans CJK ones, fonts-noto-core the others).
FALLBACK_FAMILIES = (
    "Noto Sans",
    "Noto Sans CJK JP",
    "Noto Sans CJK KR",
    "Noto Sans CJK SC",
    "Noto Sans CJK TC",
    "Noto Sans Arabic",
    "Noto Sans Hebrew",
    "Noto Sans Devanagari",
    "Noto Sans Bengali",
    "Noto Sans Thai",
    "Noto Sans Armenian",
    "Noto Sans Georgian",
    "Noto Sans Ethiopic",
    "Noto Sans Symbols",
    "Noto Sans Symbols2",
    "Droid Sans Fallback",
    "WenQuanYi Zen Hei",
)
#: Matplotlib's own font (3.10 and later) of a box for every character: the last fallback.
LAST_RESORT = "Last Resort High-Efficiency"
MISSING = "\u25a1"  # a white square, for a character no font has, when there is no Last Resort

Points = list[tuple[float, float]]  # (matplotlib date number, value), in time order
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def check_period(since: datetime, until: datetime) -> None:
    """Refuse a period no time axis can show.

    Raises:
        ValueError: naive times, or ``since`` not before ``until``.
    """
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("since and until must be timezone-aware")
    if since >= until:
        raise ValueError(f"since ({since.isoformat()}) must be before until ({until.isoformat()})")


def theme_of(options: GraphOptions) -> Theme:
    """The colours ``options`` asks for."""
    return THEMES[options.theme]


def num(moment: datetime) -> float:
    """The matplotlib date number of an aware datetime (days since the epoch, UTC)."""
    return float(date2num(moment.astimezone(UTC)))  # type: ignore[no-untyped-call]


def in_period(points: Iterable[tuple[datetime, int]], since: datetime, until: datetime) -> Points:
    """The points from ``since`` to ``until`` inclusive, as date numbers, sorted by time.

    Raises:
        ValueError: a point with a naive time.
    """
    # date2num once, then timedelta arithmetic: date2num per point took most of the render
    # of long series. Both count from the same epoch; they agree to well under a microsecond.
    origin = num(EPOCH)
    kept: Points = []
    for moment, value in points:
        if moment.tzinfo is None:
            raise ValueError(f"sample time {moment.isoformat()} has no time zone")
        if since <= moment <= until:
            kept.append((origin + (moment - EPOCH) / DAY, float(value)))
    kept.sort()
    return kept


def period_text(since: datetime, until: datetime) -> str:
    """``2026-01-01 to 2026-03-31``, with hours and minutes when either end is not midnight."""
    start, end = since.astimezone(UTC), until.astimezone(UTC)
    if all(t.hour == t.minute == t.second == t.microsecond == 0 for t in (start, end)):
        return f"{start:%Y-%m-%d} to {end:%Y-%m-%d}"
    return f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"


@functools.cache
def font_families() -> tuple[str, ...]:
    """DejaVu Sans (matplotlib's own), then the installed ``FALLBACK_FAMILIES`` and Last Resort.

    Only installed families: matplotlib logs "Font family ... not found" for each other one
    every time it draws. Read once per process: a font installed later needs a restart (and
    matplotlib's font cache rebuilt, see docs/graphs.md).
    """
    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    wanted = (*FALLBACK_FAMILIES, LAST_RESORT)
    if LAST_RESORT in installed:
        # Last Resort has no bold: matplotlib would log so for every bold title's size.
        logging.getLogger("matplotlib.font_manager").addFilter(_no_bold_last_resort)
    return ("DejaVu Sans", *(family for family in wanted if family in installed))


def _no_bold_last_resort(record: logging.LogRecord) -> bool:
    """Drop matplotlib's "Failed to find font weight bold for Last Resort" (a logging filter)."""
    return not (
        record.msg.startswith("findfont: Failed to find font weight")
        and LAST_RESORT in map(str, record.args or ())
    )


@functools.cache
def covered() -> frozenset[int] | None:
    """The characters the fonts draw, or None when Last Resort draws every one."""
    if LAST_RESORT in font_families():
        return None
    characters: set[int] = set()
    for family in font_families():
        path = font_manager.findfont(FontProperties(family=family), fallback_to_default=False)
        characters.update(get_font(path).get_charmap())
    return frozenset(characters)


def drawable(text: str) -> str:
    """``text`` with a box for each character no font draws (only without Last Resort).

    Matplotlib draws such a character as a box anyway, and warns for each: a flood in a
    server's log. Spaces and line breaks stay.
    """
    characters = covered()
    if characters is None:
        return text
    return "".join(c if c.isspace() or ord(c) in characters else MISSING for c in text)


def renderer_of(fig: Figure) -> RendererBase:
    """An Agg renderer for measuring text in ``fig`` before it is encoded."""
    return FigureCanvasAgg(fig).get_renderer()  # type: ignore[no-untyped-call, no-any-return]


def new_figure(options: GraphOptions, theme: Theme, title: str) -> Figure:
    """A figure of the size ``options`` asks for, on the theme's background, with its title.

    The title is left-aligned, bold, never parsed as mathematics, and fitted (``fit_title``).
    """
    pad = 10 / 72  # inches around the edge and between panels
    fig = Figure(
        figsize=options.figure_inches,
        dpi=options.dpi,
        facecolor=theme.background,
        layout=ConstrainedLayoutEngine(w_pad=pad, h_pad=pad, hspace=0.04),
    )
    fig.suptitle(
        drawable(title),
        x=0.01,
        fontfamily=list(font_families()),
        ha="left",
        fontsize=TITLE_SIZE,
        fontweight="bold",
        color=theme.text,
        parse_math=False,
    )
    fit_title(fig)
    return fig


def fit_title(fig: Figure) -> None:
    """Fit a title too wide for the figure: break it, shrink it, then cut a word too long.

    First before its period (after the last ``, ``); if it is still too wide even at the
    smallest size, also after its subject (the handle, host or tag before `` — ``, or a
    tag's name before `` on `` its host). Then the font shrinks to fit, down to
    ``MIN_TITLE_SIZE``. A name without spaces that is still too wide (a hashtag's name may
    have 200 letters) loses its middle to an ellipsis, keeping ``SHORTEST_NAME`` characters
    at least: the page around the graph names it in full.
    """
    title = fig.get_suptitle()
    text = fig.texts[-1]
    renderer = renderer_of(fig)
    room = fig.bbox.width * 0.97
    if text.get_window_extent(renderer).width <= room:
        return
    head, comma, period = title.rpartition(", ")
    if comma:
        text.set_text(f"{head},\n{period}")
    width = text.get_window_extent(renderer).width
    subject, dash, what = head.partition(" \u2014 ")
    if not dash:
        subject, on, what = head.partition(" on ")
        dash = on and " on "
    if width * MIN_TITLE_SIZE / TITLE_SIZE > room and comma and dash:
        joiner = f"{dash.rstrip()}\n" if dash.strip() == "\u2014" else f"\n{dash.lstrip()}"
        text.set_text(f"{subject}{joiner}{what},\n{period}")
        width = text.get_window_extent(renderer).width
    if width > room:
        text.set_fontsize(max(MIN_TITLE_SIZE, TITLE_SIZE * room / width))
        width = text.get_window_extent(renderer).width
    if width > room:
        _cut_longest_word(text, renderer, room)


def _cut_longest_word(text: Text, renderer: RendererBase, room: float) -> None:
    """Shorten the longest word of ``text`` in its middle until the text is ``room`` wide."""
    lines = [line.split(" ") for line in text.get_text().split("\n")]
    length, row, column = max(
        (len(word), r, c) for r, words in enumerate(lines) for c, word in enumerate(words)
    )
    word = lines[row][column]
    keep = length
    for _ in range(8):  # each pass cuts by the measured excess: two or three suffice
        width = text.get_window_extent(renderer).width
        if width <= room or keep <= SHORTEST_NAME:
            return
        line = " ".join(lines[row])
        excess = math.ceil(len(line) * (1 - room / width)) + 1
        keep = max(SHORTEST_NAME, keep - excess)
        head = (keep + 1) // 2
        lines[row][column] = f"{word[:head]}{ELLIPSIS}{word[length - (keep - head) :]}"
        text.set_text("\n".join(" ".join(words) for words in lines))


def style_axes(
    ax: Axes,
    theme: Theme,
    since: datetime,
    until: datetime,
    options: GraphOptions,
    *,
    days: bool = False,
) -> None:
    """Colours, grid, a UTC date axis over the period and a thousands-separated value axis.

    With ``days`` (a bar a day, centred on its noon) the ticks are at noon (``NoonLocator``):
    each day's label under its bar, never hours, even for a period of one day.
    """
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
    locator = (
        NoonLocator(most) if days else AutoDateLocator(tz=UTC, minticks=3, maxticks=most)  # type: ignore[no-untyped-call]
    )
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(DateTicks())
    offset = ax.xaxis.get_offset_text()
    offset.set_color(theme.muted)
    offset.set_fontsize(9)
    ax.set_xlim(num(since), num(until))
    ax.yaxis.set_major_locator(CountLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(thousands))


DAY_STEPS = (1, 2, 3, 7, 14)  # days between ticks a day axis tries, fewest first
MONDAY = 4  # 1970-01-05, day number 4 since matplotlib's epoch, was a Monday


class NoonLocator(Locator):
    """Ticks at the noon of days: where a day's bar is centred, so its label is under it.

    Every day while at most ``most`` fit, else every 2 or 3 days from the first, or every 7
    or 14 from a Monday; over longer spans matplotlib's months or years, moved to noon. Never
    hours: a one-day graph has one tick, its day.
    """

    def __init__(self, most: int) -> None:
        """At most ``most`` ticks (at least 3 over long spans, as matplotlib's locator)."""
        self.most = max(1, most)
        #: No tick after this date number: room an axis leaves after its last day is no day.
        self.end = math.inf
        self.auto = AutoDateLocator(tz=UTC, minticks=3, maxticks=most)  # type: ignore[no-untyped-call]

    def set_axis(self, axis: Any) -> None:  # noqa: ANN401 - matplotlib's Axis
        """Share the axis with the locator of long spans."""
        super().set_axis(axis)
        self.auto.set_axis(axis)

    def __call__(self) -> Any:  # noqa: ANN401 - numpy's array
        """The ticks of the axis's view."""
        assert self.axis is not None  # noqa: S101 - a locator is called on its axis
        low, high = self.axis.get_view_interval()
        return self.tick_values(low, high)

    def tick_values(self, vmin: float, vmax: float) -> Any:  # noqa: ANN401 - numpy's array
        """The noons of days from ``vmin`` to ``vmax`` (date numbers), spaced to fit."""
        low, high = sorted((vmin, vmax))
        high = min(high, self.end)
        first, last = math.ceil(low - 0.5), math.floor(high - 0.5)  # day numbers of noons in view
        count = last - first + 1
        if count < 1:
            return np.array([], dtype=float)
        for step in DAY_STEPS:
            if math.ceil(count / step) <= self.most:
                origin = first if step < 7 else MONDAY  # noqa: PLR2004 - weeks start on Mondays
                start = first + (origin - first) % step
                return np.arange(start, last + 1, step, dtype=float) + 0.5
        # Matplotlib's date locators take datetimes here, not date numbers.
        found = self.auto.tick_values(  # type: ignore[no-untyped-call]
            num2date(low - 0.5, tz=UTC),  # type: ignore[no-untyped-call]
            num2date(high - 0.5, tz=UTC),  # type: ignore[no-untyped-call]
        )
        return np.array([t + 0.5 for t in found if low <= t + 0.5 <= high], dtype=float)


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class DateTicks(Formatter):
    """Date labels that name the month of every day and say the year once.

    By what the ticks step over:

    - years: ``2025 2026 2027``;
    - months: ``Nov 2026 Dec Jan 2027 Feb``: the year on the first tick and each January;
    - days: ``Nov 24 Dec 1 Dec 8`` over the year as the offset
      (``2026``; across a new year, both years joined by an en dash);
    - hours and minutes: ``Nov 24 06:00 12:00 18:00 Nov 25``, over the ISO dates.

    Matplotlib's ``ConciseDateFormatter`` wrote ``08 15 22 Dec`` over ``2026-Dec``: November
    was never named and the offset said December. English month names, whatever the locale,
    as everywhere in fedimeter.
    """

    def __init__(self) -> None:
        """No offset until ticks are formatted."""
        self.offset = ""

    def format_ticks(self, values: Any) -> list[str]:  # noqa: ANN401 - a sequence or an array
        """The labels of the ticks at ``values`` (date numbers), and the offset under them."""
        moments = [num2date(value, tz=UTC) for value in values]  # type: ignore[no-untyped-call]
        self.offset = ""
        if not moments:
            return []
        # The locator gives a tick or two beyond the axis: the first one shown gets the year.
        low, high = (
            self.axis.get_view_interval() if self.axis is not None else (-math.inf, math.inf)
        )
        shown = [low - EXACT <= value <= high + EXACT for value in values]
        first = shown.index(True) if any(shown) else 0
        visible = [m for m, seen in zip(moments, shown, strict=True) if seen] or moments
        step = _step(moments)
        if step == "year":
            return [f"{m.year}" for m in moments]
        if step == "month":
            return [
                f"{MONTHS[m.month - 1]} {m.year}"
                if n == first or m.month == 1
                else MONTHS[m.month - 1]
                for n, m in enumerate(moments)
            ]
        start, end = visible[0], visible[-1]
        if step == "day":
            self.offset = (
                f"{start.year}" if start.year == end.year else f"{start.year}\u2013{end.year}"
            )
            return [_day(m) for m in moments]
        self.offset = (
            f"{start:%Y-%m-%d}"
            if start.date() == end.date()
            else f"{start:%Y-%m-%d} to {end:%Y-%m-%d}"
        )
        clock = "%H:%M" if step == "hour" else "%H:%M:%S"
        return [_day(m) if m.hour == m.minute == m.second == 0 else f"{m:{clock}}" for m in moments]

    def get_offset(self) -> str:
        """The year or the dates the tick labels leave out, under the axis's end."""
        return self.offset

    def __call__(self, x: float, pos: int | None = None) -> str:
        """One moment in full: ``2026-11-24 06:00``."""
        del pos
        return f"{num2date(x, tz=UTC):%Y-%m-%d %H:%M}"  # type: ignore[no-untyped-call]


def _day(moment: datetime) -> str:
    """``Nov 24``."""
    return f"{MONTHS[moment.month - 1]} {moment.day}"


def _step(moments: Sequence[datetime]) -> str:
    """What ticks step over: the finest of year, month, day, hour, second that differs."""

    def differ(field: Callable[[datetime], object]) -> bool:
        return len({field(m) for m in moments}) > 1

    if differ(lambda m: (m.second, m.microsecond)):
        return "second"
    if differ(lambda m: (m.hour, m.minute)):
        return "hour"
    if differ(lambda m: m.day) or len(moments) == 1:
        return "day"
    return "month" if differ(lambda m: m.month) else "year"


class CountLocator(MaxNLocator):
    """Value ticks for counts: whole numbers only, at 1, 2, 5 or 10 times a power of ten.

    ``MaxNLocator(integer=True)`` gives up on whole numbers when fewer than ``min_n_ticks`` of
    them are in view: a count of 0 to 1 got ticks at 0, 0.2, 0.4 ... printed ``0 0 0 1 1 1``.
    Here a step under one is never taken: such an axis gets a tick at each whole number.
    """

    def __init__(self, *, min_n_ticks: int = 3) -> None:
        """Nice whole steps, at least ``min_n_ticks`` of them when the range has room."""
        super().__init__(nbins="auto", steps=NICE_STEPS, integer=True, min_n_ticks=min_n_ticks)

    def tick_values(self, vmin: float, vmax: float) -> Any:  # noqa: ANN401 - numpy's array
        """Whole-number ticks covering ``vmin`` to ``vmax``."""
        ticks = super().tick_values(vmin, vmax)
        if len(ticks) > 1 and ticks[1] - ticks[0] >= 1:
            return ticks
        low, high = sorted((vmin, vmax))
        return np.arange(math.floor(low), math.ceil(high) + 1, dtype=float)


class DecimalFormatter(Formatter):
    """Value labels with as many decimals as the ticks need to differ, and a ``suffix``.

    For what is not a count (an index, a ratio, a percentage): ``99.5 100 100.5`` rather than
    ``100 100 100``, ``12.5%`` rather than ``12%``. Thousands are separated.
    """

    def __init__(self, suffix: str = "") -> None:
        """Labels ending in ``suffix`` (``%`` for a rate)."""
        self.suffix = suffix
        self.decimals = 0

    def format_ticks(self, values: Any) -> list[str]:  # noqa: ANN401 - a sequence or an array
        """The labels of ``values``, with the fewest decimals that keep them apart."""
        shown = [float(value) for value in values]
        self.decimals = next(
            (
                places
                for places in range(7)
                if len({f"{value:.{places}f}" for value in shown}) == len(set(shown))
                and all(abs(value - round(value, places)) < EXACT for value in shown)
            ),
            6,
        )
        return [self(value) for value in shown]

    def __call__(self, x: float, pos: int | None = None) -> str:
        """One label at the decimals of the last ticks."""
        del pos
        text = f"{x:,.{self.decimals}f}"
        return f"{'0' if float(text.replace(',', '')) == 0 else text}{self.suffix}"


def panel_title(ax: Axes, text: str, theme: Theme) -> None:
    """The small muted name of one panel of a figure with several, above its top left."""
    ax.set_title(text, loc="left", fontsize=10, color=theme.muted, pad=4)


def thousands(value: float, _position: int | None = None) -> str:
    """``12,345``; ``+ 0`` turns the ``-0`` of a tick just under zero into ``0``."""
    return f"{round(value) + 0:,}"


def runs(xs: Sequence[float]) -> list[range]:
    """Split point indices where a step is longer than GAP_FACTOR median steps.

    Samples come on a schedule; a step much longer than usual means collection stopped, and
    a line across it would invent values. Fewer than three points are one run.
    """
    if len(xs) < 3:  # noqa: PLR2004 - two steps are needed for a median that means anything
        return [range(len(xs))]
    steps = [b - a for a, b in itertools.pairwise(xs)]
    longest = max(GAP_FACTOR * statistics.median(steps), 1 / (24 * 60))  # at least a minute
    found, start = [], 0
    for n, step in enumerate(steps, start=1):
        if step > longest:
            found.append(range(start, n))
            start = n
    found.append(range(start, len(xs)))
    return found


def draw_line(
    ax: Axes, points: Points, colour: str, n: int, *, label: str, marked: bool, style: str = "-"
) -> None:
    """Draw a series as lines between close samples, with dotted hints across the gaps.

    Each run is a ``Line2D`` with gid ``data-<n>-<run>``; together they hold every point once.
    Points are ``marked`` with dots, as are lone points between two gaps.
    """
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    for r, run in enumerate(runs(xs)):
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


def draw_counts(ax: Axes, points: Points, subject: str, colour: str, theme: Theme) -> None:
    """Draw one series of counts, label its latest value, or say why there is nothing.

    ``subject`` (a handle or a host) names what has no samples when there are none.
    """
    if not points:
        say(ax, f"No samples yet for {subject} in this period", theme)
        return
    draw_line(ax, points, colour, 0, label=subject, marked=len(points) <= MARKERS_UP_TO)
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
    label_value(ax, (x, y), f"{y:,.0f}", colour=colour, theme=theme)
    set_value_limits(ax, [value for _, value in points])
    if len(points) == 1:
        say(ax, "Only one sample in this period: a trend needs two.", theme, y=0.92)


def label_value(
    ax: Axes,
    point: tuple[float, float],
    text: str,
    *,
    colour: str,
    theme: Theme,
    offset: tuple[float, float] = (8, 0),
    ha: str = "left",
    va: str = "center",
) -> None:
    """A boxed, bold value beside ``point`` (gid ``latest``), outside the axes if need be.

    Constrained layout keeps it inside the figure: it widens the margin the label reaches into.
    """
    ax.annotate(
        text,
        xy=point,
        xytext=offset,
        textcoords="offset points",
        ha=ha,
        va=va,
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


def set_value_limits(ax: Axes, values: Sequence[float]) -> None:
    """Fit the value axis to the data with some air; counts never get a negative axis."""
    low, high = min(values), max(values)
    air = (high - low) * 0.12 if high > low else max(1.0, abs(high) * 0.05)
    bottom = low - air
    if low >= 0 > bottom:
        bottom = 0.0
    ax.set_ylim(bottom, high + air)


def say(ax: Axes, message: str, theme: Theme, *, y: float = 0.5, above: bool = False) -> None:
    """Write a note in the middle of the axes (gid ``note``); alone, it hides the value axis.

    The note sits on a patch of background, so a line or bar under it never makes it unreadable.
    ``above`` puts it over the axes' top left corner instead, where it covers nothing drawn.
    """
    ax.text(
        0.0 if above else 0.5,
        1.0 if above else y,
        drawable(message),
        fontfamily=list(font_families()),
        transform=offset_copy(ax.transAxes, fig=ax.get_figure(root=True), y=4, units="points")
        if above
        else ax.transAxes,
        ha="left" if above else "center",
        va="bottom" if above else "center",
        fontsize=12 if y == 0.5 and not above else 10,  # noqa: PLR2004 - the centre
        color=theme.muted,
        parse_math=False,
        gid="note",
        zorder=5,
        bbox={
            "boxstyle": "round,pad=0.3",
            "facecolor": theme.background,
            "edgecolor": "none",
            "alpha": 0.85,
        },
    )
    if not ax.has_data():
        ax.yaxis.set_major_locator(NullLocator())
        ax.set_ylim(0, 1)


def legend_below(fig: Figure, ax: Axes, theme: Theme) -> Legend:
    """The legend of ``ax`` under the axes, as wide as the figure allows and no wider.

    It takes as many columns (up to four) as fit the width, at the largest font that keeps it
    under ``LEGEND_HEIGHT_SHARE`` of the height below the title. When no font does, names lose
    their middle (``@someone@a.very…example: 1,234``, never the value) so that more columns
    fit, as long as ``SHORTEST_NAME`` characters of each remain; names too long for even one
    column are shortened as far as they must.

    Returns:
        The figure's legend (gid ``legend``).
    """
    handles, labels = ax.get_legend_handles_labels()
    renderer = renderer_of(fig)
    room = fig.bbox.width * 0.98
    # The share is of the height left for axes and legend once the title and time axis are in.
    title = fig.texts[0].get_window_extent(renderer).height if fig.texts else 0.0
    tall = (fig.bbox.height - title - TIME_AXIS_PT / 72 * fig.dpi) * LEGEND_HEIGHT_SHARE
    most = min(len(labels), LEGEND_COLUMNS)
    for size in LEGEND_SIZES:
        for columns in range(most, 0, -1):
            legend = _legend(fig, handles, labels, theme, size=size, columns=columns)
            box = legend.get_window_extent(renderer)
            if box.width <= room and box.height <= tall:
                return legend
            legend.remove()
            if box.width <= room:
                break  # fewer columns would only be taller: try a smaller font
    for columns in range(most, 1, -1):
        fitted = _fitted(fig, handles, labels, theme, columns=columns, shortest=SHORTEST_NAME)
        if fitted is not None and fitted.get_window_extent(renderer).height <= tall:
            return fitted
        if fitted is not None:
            fitted.remove()
    one = _fitted(fig, handles, labels, theme, columns=1, shortest=4)
    assert one is not None  # noqa: S101 - four characters of a name always fit
    return one


def _fitted(
    fig: Figure,
    handles: list[Artist],
    labels: list[str],
    theme: Theme,
    *,
    columns: int,
    shortest: int,
) -> Legend | None:
    """A legend in ``columns`` at the smallest size, names shortened until it fits the width.

    Returns:
        The legend, or None when names would have to be shorter than ``shortest`` (except for
        one column, which takes what it must down to four characters).
    """
    renderer = renderer_of(fig)
    room = fig.bbox.width * 0.98
    shown = labels
    for _ in range(8):  # each pass shortens by the measured excess: two or three suffice
        legend = _legend(fig, handles, shown, theme, size=LEGEND_SIZES[-1], columns=columns)
        width = legend.get_window_extent(renderer).width
        if width <= room:
            return legend
        legend.remove()
        shorter = [_shortened(label, room / width * 0.97, shortest) for label in shown]
        if shorter == shown:
            break
        shown = shorter
    if columns == 1:
        return _legend(fig, handles, shown, theme, size=LEGEND_SIZES[-1], columns=1)
    return None


def _legend(
    fig: Figure,
    handles: list[Artist],
    labels: list[str],
    theme: Theme,
    *,
    size: float,
    columns: int,
) -> Legend:
    legend = fig.legend(
        handles,
        [drawable(label) for label in labels],
        loc="outside lower center",
        ncols=columns,
        frameon=False,
        prop=FontProperties(family=list(font_families()), size=size),
        handlelength=2.5,
        columnspacing=1.6,
    )
    legend.set_gid("legend")
    for text in legend.get_texts():
        text.set_color(theme.text)
        text.set_parse_math(False)
    return legend


def _shortened(label: str, share: float, shortest: int) -> str:
    """``label`` cut to about ``share`` of its length, in the middle of the name before ``: ``.

    The name keeps at least ``shortest`` characters and the ellipsis.
    """
    name, colon, value = label.rpartition(": ")
    if not colon:
        name, value = label, ""
    keep = max(shortest, int(len(label) * share) - len(colon + value) - 1)
    if keep >= len(name):
        return label
    head = (keep + 1) // 2
    return f"{name[:head]}{ELLIPSIS}{name[len(name) - (keep - head) :]}{colon}{value}"
