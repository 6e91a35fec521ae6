"""Hashtag graphs: uses as bars and accounts as a line, instances compared, gaps and days so far."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_rgba
from matplotlib.patches import Rectangle
from typer.testing import CliRunner, Result

from fedimeter.cli.app import app
from fedimeter.config import load_settings
from fedimeter.domain.models import InstanceAddress
from fedimeter.domain.tags import TagDay, TagReading, parse_tag_name
from fedimeter.errors import InvalidInput
from fedimeter.graphing import MAX_COMPARED, MIN_TAG_DAYS, tag_days_period, tag_graph
from fedimeter.graphs import (
    THEMES,
    GraphOptions,
    TagDayLike,
    TagMetric,
    TagSeries,
    ThemeName,
    render_tag_comparison,
    render_tag_days,
    tag_comparison_figure,
    tag_days_figure,
)
from fedimeter.storage.database import Database
from fedimeter.storage.tags import TagRecord, TagStore
from test_graph import drawn, num, png_size, svg_root, texts_with_gid, ys
from test_graph_compare import svg_texts

# A label or bar that pushes the layout out of the figure warns; here that is a failure.
pytestmark = pytest.mark.filterwarnings("error::UserWarning")

NAME, HOST = "Caturday", "mastodon.example"
FIRST = date(2026, 3, 1)
LAST = date(2026, 3, 30)


@dataclass(frozen=True)
class Day:
    """One day as the storage layer hands it over."""

    day: date
    uses: int
    accounts: int
    complete: bool = True
    updated_at: datetime | None = None


def days(count: int, *, skip: range | tuple[int, ...] = (), today: bool = True) -> list[Day]:
    """``count`` days from FIRST: uses 100 + 10n, accounts 40 + n; the last one in progress."""
    return [
        Day(
            FIRST + timedelta(days=n),
            100 + 10 * n if not (today and n == count - 1) else 7,
            40 + n if not (today and n == count - 1) else 3,
            complete=not (today and n == count - 1),
        )
        for n in range(count)
        if n not in skip
    ]


MONTH = days(30, skip=range(12, 16))  # the 13th to the 16th never answered; the 30th so far


def midnight(day: date) -> datetime:
    """The start of a UTC day."""
    return datetime.combine(day, datetime.min.time(), UTC)


def centre(day: date) -> float:
    """Where a day is drawn: its noon, as engagement's days (and the date ticks)."""
    return num(midnight(day)) + 0.5


@dataclass(frozen=True)
class Bar:
    """Where a day's bar stands and how tall it is."""

    x: float
    width: float
    height: float
    in_progress: bool


def complete_days(ax: Axes) -> PolyCollection:
    """The one collection of complete days' bars."""
    (found,) = [c for c in ax.collections if c.get_gid() == "days"]
    assert isinstance(found, PolyCollection)
    return found


def days_in_progress(ax: Axes) -> list[Rectangle]:
    """The hatched bars of days still counting."""
    return [p for p in ax.patches if p.get_gid() == "day-in-progress" and isinstance(p, Rectangle)]


def bars(ax: Axes) -> list[Bar]:
    """Every bar, complete or not, in time order."""
    corners = [np.asarray(path.vertices, dtype=float) for path in complete_days(ax).get_paths()]
    found = [
        Bar(float(xy[:, 0].min()), float(np.ptp(xy[:, 0])), float(xy[:, 1].max()), False)
        for xy in corners
    ]
    found += [Bar(b.get_x(), b.get_width(), b.get_height(), True) for b in days_in_progress(ax)]
    return sorted(found, key=lambda bar: bar.x)


def line_runs(ax: Axes) -> dict[str, list[float]]:
    """The values each data line draws, by gid."""
    return {
        str(line.get_gid()): ys(line)
        for line in ax.get_lines()
        if (line.get_gid() or "").startswith("data-")
    }


def legend_texts(ax: Axes) -> list[str]:
    """The entries of the figure's legend."""
    figure = ax.get_figure()
    assert figure is not None
    (legend,) = figure.legends
    return [text.get_text() for text in legend.get_texts()]


def test_tag_days_fit_the_protocol() -> None:
    """The test days are what the storage layer provides (mypy checks the assignment)."""
    one: TagDayLike = MONTH[0]
    assert (one.uses, one.accounts, one.complete) == (100, 40, True)


RENDERS: dict[str, Callable[[GraphOptions], bytes]] = {
    "days": lambda o: render_tag_days(NAME, HOST, MONTH, first=FIRST, last=LAST, options=o),
    "one day": lambda o: render_tag_days(NAME, HOST, MONTH[:1], first=FIRST, last=LAST, options=o),
    "empty": lambda o: render_tag_days(NAME, HOST, [], first=FIRST, last=LAST, options=o),
    "compared": lambda o: render_tag_comparison(
        NAME,
        [TagSeries(HOST, MONTH), TagSeries("other.example", days(20, skip=(3,)))],
        "accounts",
        first=FIRST,
        last=LAST,
        options=o,
    ),
}


@pytest.mark.parametrize("kind", RENDERS)
@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_png_has_the_stated_pixel_size(kind: str, theme: ThemeName, scale: float) -> None:
    """Every tag graph is a PNG of width x height x scale pixels."""
    data = RENDERS[kind](GraphOptions(theme=theme, scale=scale, width_px=820, height_px=460))
    assert png_size(data) == (820 * scale, 460 * scale)


@pytest.mark.parametrize("kind", RENDERS)
def test_svg_parses_states_its_size_and_is_reproducible(kind: str) -> None:
    """An SVG whose root says its size in pixels, with no date: the same bytes twice."""
    options = GraphOptions(fmt="svg", scale=2.0, width_px=700, height_px=350)
    data = RENDERS[kind](options)
    root = svg_root(data)
    assert (root.get("width"), root.get("height")) == ("700px", "350px")
    assert b"<dc:date>" not in data
    assert RENDERS[kind](options) == data


@pytest.mark.parametrize(
    ("kind", "width", "height"),
    [
        ("days", 200, 150),
        ("days", 400, 360),
        ("days", 4000, 300),
        # A comparison's legend needs some room, as accounts' comparisons do.
        ("compared", 400, 360),
        ("compared", 4000, 300),
    ],
)
def test_small_and_odd_sizes_keep_their_layout(kind: str, width: int, height: int) -> None:
    """The smallest, a phone's and a very wide graph are drawn without the layout giving up."""
    assert png_size(RENDERS[kind](GraphOptions(width_px=width, height_px=height))) == (
        width,
        height,
    )


def test_uses_are_bars_on_their_days_and_the_axis_spans_the_period() -> None:
    """One bar per recorded day, centred on its date, its height the day's uses."""
    fig = drawn(tag_days_figure(NAME, HOST, MONTH, first=FIRST, last=LAST, options=GraphOptions()))
    (ax,) = fig.axes
    assert fig.get_suptitle() == "#Caturday on mastodon.example, 2026-03-01 to 2026-03-30"
    low, high = ax.get_xlim()
    assert low == centre(FIRST) - 0.5
    # To the end of the last day, and a little after when the newest bar's label needs room.
    assert centre(LAST) + 0.5 <= high < centre(LAST) + 0.5 + 0.15 * len(MONTH)
    found = bars(ax)
    assert [bar.height for bar in found] == [day.uses for day in MONTH]
    for bar, day in zip(found, MONTH, strict=True):
        assert bar.x + bar.width / 2 == pytest.approx(centre(day.day))
        assert bar.width == pytest.approx(0.8)
    assert ax.get_ylim()[0] == 0
    assert ax.get_ylim()[1] > max(day.uses for day in MONTH)


def test_the_day_in_progress_is_hatched_pale_and_labelled_so_far() -> None:
    """Only the newest bar is hatched and pale; its label and the legend say "so far"."""
    fig = tag_days_figure(NAME, HOST, MONTH, first=FIRST, last=LAST, options=GraphOptions())
    (ax,) = fig.axes
    colour = THEMES["light"].palette[0]
    assert [bar.in_progress for bar in bars(ax)] == [False] * (len(MONTH) - 1) + [True]
    (today,) = days_in_progress(ax)
    assert today.get_hatch() == "////"
    fill, ink = to_rgba(today.get_facecolor()), to_rgba(colour)
    assert fill[3] == 1.0  # opaque: the grid does not show through
    assert all(i < f <= 1.0 for i, f in zip(ink[:3], fill[:3], strict=True))  # paler
    assert not complete_days(ax).get_hatch()
    assert texts_with_gid(ax, "latest") == ["7 so far"]
    assert legend_texts(ax) == [
        "uses a day",
        "day in progress (so far)",
        "accounts a day",
        "not recorded",
    ]


def test_a_day_never_answered_is_a_shaded_gap_never_a_zero() -> None:
    """No bar and no line over the missing days; they are shaded "not recorded"."""
    fig = tag_days_figure(NAME, HOST, MONTH, first=FIRST, last=LAST, options=GraphOptions())
    (ax,) = fig.axes
    drawn_days = [bar.x + bar.width / 2 for bar in bars(ax)]
    for n in range(12, 16):
        assert all(abs(x - centre(FIRST + timedelta(days=n))) > 0.5 for x in drawn_days)
    (gap,) = [p for p in ax.patches if p.get_gid() == "not-recorded"]
    assert isinstance(gap, Rectangle)  # in data x, over the whole height of the axes
    assert gap.get_x() == pytest.approx(centre(FIRST + timedelta(days=12)) - 0.5)
    assert gap.get_x() + gap.get_width() == pytest.approx(centre(FIRST + timedelta(days=15)) + 0.5)
    assert (gap.get_y(), gap.get_height()) == (0, 1)
    runs = line_runs(ax)
    assert runs == {
        "data-0-0": [40.0 + n for n in range(12)],
        "data-0-1": [40.0 + n for n in range(16, 29)],
    }
    assert 0.0 not in [v for values in runs.values() for v in values]


def gaps(ax: Axes) -> list[tuple[float, float]]:
    """The shaded "not recorded" stretches, as (start, end) in date numbers."""
    shaded = [p for p in ax.patches if p.get_gid() == "not-recorded"]
    assert all(isinstance(p, Rectangle) for p in shaded)
    return sorted(
        (p.get_x(), p.get_x() + p.get_width()) for p in shaded if isinstance(p, Rectangle)
    )


def test_every_day_of_the_period_without_a_stored_day_is_shaded() -> None:
    """Before the first recorded day and after the last, as the page's table says.

    The tag's page lists each such day as "not recorded" and its graph's alt text says days
    not recorded are shaded: the graph used to leave the days before the first one blank.
    """
    stored = [day for day in MONTH if day.day >= FIRST + timedelta(days=5)][:-3]
    fig = tag_days_figure(NAME, HOST, stored, first=FIRST, last=LAST, options=GraphOptions())
    (ax,) = fig.axes
    edge = [centre(FIRST) - 0.5, centre(LAST) + 0.5]
    assert gaps(ax) == [
        pytest.approx((edge[0], centre(FIRST + timedelta(days=4)) + 0.5)),
        pytest.approx(
            (centre(FIRST + timedelta(days=12)) - 0.5, centre(FIRST + timedelta(days=15)) + 0.5)
        ),
        pytest.approx((centre(LAST - timedelta(days=2)) - 0.5, edge[1])),
    ]
    assert legend_texts(ax).count("not recorded") == 1


def test_a_period_with_no_stored_day_is_shaded_whole() -> None:
    """No day at all: the note says so over a period shaded "not recorded"."""
    fig = tag_days_figure(NAME, HOST, [], first=FIRST, last=LAST, options=GraphOptions())
    (ax,) = fig.axes
    assert gaps(ax) == [pytest.approx((centre(FIRST) - 0.5, centre(LAST) + 0.5))]


def test_the_accounts_of_the_day_in_progress_are_an_open_dot_apart() -> None:
    """Joined to the line, a partial day would read as a fall: it is an open dot of its own."""
    fig = tag_days_figure(NAME, HOST, MONTH, first=FIRST, last=LAST, options=GraphOptions())
    (ax,) = fig.axes
    (dot,) = [line for line in ax.get_lines() if line.get_gid() == "so-far-0"]
    assert ys(dot) == [3.0]
    assert dot.get_linestyle() == "None"
    assert to_rgba(dot.get_markerfacecolor()) == to_rgba(THEMES["light"].background)
    assert all(3.0 not in values for values in line_runs(ax).values())


def test_complete_days_only_need_no_so_far_and_no_gap_entries() -> None:
    """With every day complete and none missing, the legend has the two series only."""
    done = days(10, today=False)
    fig = tag_days_figure(
        NAME, HOST, done, first=FIRST, last=FIRST + timedelta(days=9), options=GraphOptions()
    )
    (ax,) = fig.axes
    assert legend_texts(ax) == ["uses a day", "accounts a day"]
    assert texts_with_gid(ax, "latest") == ["190"]
    assert days_in_progress(ax) == []


def test_a_short_figure_leaves_the_legend_out() -> None:
    """Under 250 pixels of height the bars get the room; "so far" still marks today."""
    fig = tag_days_figure(
        NAME, HOST, MONTH, first=FIRST, last=LAST, options=GraphOptions(width_px=400, height_px=200)
    )
    assert fig.legends == []
    assert texts_with_gid(fig.axes[0], "latest") == ["7 so far"]


def test_days_outside_the_period_are_left_out() -> None:
    """Only days from first to last are drawn."""
    first, last = FIRST + timedelta(days=3), FIRST + timedelta(days=6)
    fig = tag_days_figure(NAME, HOST, MONTH, first=first, last=last, options=GraphOptions())
    assert [bar.height for bar in bars(fig.axes[0])] == [130, 140, 150, 160]
    assert fig.get_suptitle() == "#Caturday on mastodon.example, 2026-03-04 to 2026-03-07"


def test_no_day_or_one_day_says_so() -> None:
    """No day: a note; one day: its bar, its value and a note."""
    empty = tag_days_figure(NAME, HOST, [], first=FIRST, last=LAST, options=GraphOptions())
    assert texts_with_gid(empty.axes[0], "note") == ["No day recorded in this period"]
    assert empty.legends == []
    one = tag_days_figure(NAME, HOST, MONTH[:1], first=FIRST, last=LAST, options=GraphOptions())
    assert [bar.height for bar in bars(one.axes[0])] == [100]
    assert texts_with_gid(one.axes[0], "latest") == ["100"]
    assert texts_with_gid(one.axes[0], "note") == [
        "Only one day in this period: a trend needs two."
    ]


def tick_labels(ax: Axes) -> dict[float, str]:
    """The date ticks in view and their labels, after a layout pass."""
    low, high = ax.get_xlim()
    return {
        float(x): label.get_text()
        for x, label in zip(ax.get_xticks(), ax.get_xticklabels(), strict=True)
        if low <= x <= high
    }


@pytest.mark.parametrize("count", [1, 2])
@pytest.mark.parametrize("width", [1000, 400])
def test_one_or_two_days_are_days_not_hours(count: int, width: int) -> None:
    """A bar centred on its day's tick, day labels, no hour; the year under the axis.

    A one-day graph had hour ticks (12:00 ... 12:00), its bar from the day before's afternoon
    to the morning, and "2026-12-06 to 2026-12-07" under the axis of a graph of 2026-12-07.
    """
    last = date(2026, 12, 7)
    first = last - timedelta(days=count - 1)
    stored = [Day(first + timedelta(days=n), 29 - 26 * n, 4, complete=n == 0) for n in range(2)]
    stored = stored[:count] if count == 2 else [Day(last, 3, 3, complete=False)]
    options = GraphOptions(width_px=width, height_px=500 if width == 1000 else 360)
    fig = drawn(tag_days_figure(NAME, HOST, stored, first=first, last=last, options=options))
    (ax,) = fig.axes
    low, high = ax.get_xlim()
    assert low == pytest.approx(num(midnight(first)))
    assert high >= num(midnight(last)) + 1
    ticks = tick_labels(ax)
    expected = {centre(first + timedelta(days=n)): f"Dec {first.day + n}" for n in range(count)}
    assert ticks == expected
    assert ax.xaxis.get_offset_text().get_text() == "2026"
    for bar in bars(ax):
        assert bar.x + bar.width / 2 in [pytest.approx(x) for x in expected]
        assert bar.width == pytest.approx(0.8)


def test_the_one_day_note_covers_no_data() -> None:
    """Above the axes, not over the bar and the accounts' dot."""
    last = date(2026, 12, 7)
    fig = tag_days_figure(
        NAME, HOST, [Day(last, 3, 3, complete=False)], first=last, last=last, options=GraphOptions()
    )
    fig.draw_without_rendering()
    (ax,) = fig.axes
    (note,) = [text for text in ax.texts if text.get_gid() == "note"]
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    box = note.get_window_extent(renderer)
    assert box.y0 >= ax.bbox.y1
    assert box.y1 <= fig.bbox.height
    title = fig.texts[0].get_window_extent(renderer)
    assert box.y1 <= title.y0


def test_day_ticks_step_over_days_and_weeks_at_noon() -> None:
    """Every tick names the day whose bar is over it: a week's days, a month's Mondays."""
    for span in (7, 30, 90):
        last = FIRST + timedelta(days=span - 1)
        fig = drawn(tag_days_figure(NAME, HOST, [], first=FIRST, last=last, options=GraphOptions()))
        ticks = tick_labels(fig.axes[0])
        assert 3 <= len(ticks) <= 8, ticks
        for x in ticks:
            assert x % 1 == pytest.approx(0.5), ticks
        if span == 7:
            assert list(ticks.values()) == [f"Mar {n}" for n in range(1, 8)]
        else:  # every 7 or 14 days, from a Monday (2026-03-02 was one)
            assert all((x - 0.5 - num(midnight(date(2026, 3, 2)))) % 7 == 0 for x in ticks)


@pytest.mark.parametrize(
    "options",
    [
        GraphOptions(),
        GraphOptions(width_px=400, height_px=360),
        GraphOptions(fmt="svg", theme="dark"),
        GraphOptions(fmt="svg", width_px=400, height_px=360),
    ],
    ids=["wide", "phone", "svg", "phone svg"],
)
@pytest.mark.parametrize("stored", [MONTH, days(30, today=False)], ids=["so far", "complete"])
def test_the_newest_bars_label_stays_inside_the_axes(
    options: GraphOptions, stored: list[Day]
) -> None:
    """A label beside the last day's bar ran over the axes' right edge: it fits inside.

    "7 so far" also reached under the axis, a bar of 7 being low. The room made for it is no
    day: no tick after the last day.
    """
    fig = tag_days_figure(NAME, HOST, stored, first=FIRST, last=LAST, options=options)
    fig.draw_without_rendering()
    (ax,) = fig.axes
    (label,) = [text for text in ax.texts if text.get_gid() == "latest"]
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    patch = label.get_bbox_patch()
    assert patch is not None
    box = patch.get_window_extent(renderer)
    assert ax.bbox.x0 <= box.x0
    assert box.x1 <= ax.bbox.x1
    assert ax.bbox.y0 <= box.y0
    assert box.y1 <= ax.bbox.y1
    assert max(ax.get_xticks()[ax.get_xticks() <= ax.get_xlim()[1]]) <= centre(LAST)


def test_years_of_days_are_gapless_bars() -> None:
    """Two years of days (about 1 px each) fill their day, without antialiasing moire."""
    many = [Day(FIRST + timedelta(days=n), 10 + n % 7, 5) for n in range(730)]
    fig = tag_days_figure(
        NAME, HOST, many, first=FIRST, last=FIRST + timedelta(days=729), options=GraphOptions()
    )
    found = bars(fig.axes[0])
    assert len(found) == 730
    assert found[0].width == pytest.approx(1.0)
    assert not any(complete_days(fig.axes[0]).get_antialiased())


@pytest.mark.parametrize("span", [2, 30, 3653], ids=["2 days", "a month", "10 years"])
def test_the_year_is_on_the_time_axis(span: int) -> None:
    """From two days to ten years the year is in a tick label or the offset; 3 to 10 ticks."""
    last = FIRST + timedelta(days=span - 1)
    some = [Day(FIRST + timedelta(days=n), 10, 5) for n in range(0, span, max(1, span // 50))]
    for fig in (
        tag_days_figure(NAME, HOST, some, first=FIRST, last=last, options=GraphOptions()),
        tag_comparison_figure(
            NAME, [TagSeries(HOST, some)], "uses", first=FIRST, last=last, options=GraphOptions()
        ),
    ):
        ax = drawn(fig).axes[0]
        labels = [label.get_text() for label in ax.get_xticklabels() if label.get_text()]
        shown = " ".join([*labels, ax.xaxis.get_offset_text().get_text()])
        assert re.search(r"\b20\d\d\b", shown), shown
        assert 2 <= len(labels) <= 10, labels


def test_a_tag_name_with_dollar_signs_is_not_math() -> None:
    """Names come from servers: ``$x$`` is shown as written."""
    fig = tag_days_figure("$x$", HOST, MONTH, first=FIRST, last=LAST, options=GraphOptions())
    title = fig.texts[0]
    assert title.get_text() == "#$x$ on mastodon.example, 2026-03-01 to 2026-03-30"
    assert not title.get_parse_math()
    assert png_size(render_tag_days("$x$", HOST, MONTH, first=FIRST, last=LAST)) == (1000, 500)


@pytest.mark.parametrize("length", [64, 200])
@pytest.mark.parametrize(
    "options",
    [
        GraphOptions(),
        GraphOptions(width_px=400, height_px=360),
        GraphOptions(fmt="svg", width_px=400),
    ],
    ids=["wide", "phone", "phone svg"],
)
def test_a_long_name_fits_the_title(length: int, options: GraphOptions) -> None:
    """A name without spaces (up to 200 letters) never runs out of the image.

    It wraps before its host and period; still too wide at the smallest size, it loses its
    middle to an ellipsis, its start and end kept. The host and period stay whole.
    """
    name = "A" * (length - 4) + "long"
    for fig in (
        tag_days_figure(name, HOST, MONTH, first=FIRST, last=LAST, options=options),
        tag_comparison_figure(
            name, [TagSeries(HOST, MONTH)], "uses", first=FIRST, last=LAST, options=options
        ),
    ):
        title = fig.texts[0]
        renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
        box = title.get_window_extent(renderer)
        assert box.x0 >= 0, title.get_text()
        assert box.x1 <= fig.bbox.width, title.get_text()
        shown = title.get_text()
        assert shown.startswith("#AAAA"), shown
        assert "long" in shown, shown
        assert "2026-03-01 to 2026-03-30" in shown, shown
        if "on 1 instance" not in shown:
            assert f"on {HOST}" in shown, shown
        assert name in shown or "\u2026" in shown, shown
        if options.width_px < 500 and length == 200:
            assert "\u2026" in shown, shown


def stale_month() -> list[Day]:
    """MONTH with the 10th left incomplete at 03:00 (the server went down for two days)."""
    tenth = FIRST + timedelta(days=9)
    return [
        replace(day, complete=False, updated_at=midnight(tenth) + timedelta(hours=3))
        if day.day == tenth
        else day
        for day in MONTH
        if day.day not in (tenth + timedelta(days=1), tenth + timedelta(days=2))
    ]


def days_incomplete(ax: Axes) -> list[Rectangle]:
    """The bars of older days left incomplete."""
    return [p for p in ax.patches if p.get_gid() == "day-incomplete" and isinstance(p, Rectangle)]


def test_an_older_incomplete_day_is_read_until_not_in_progress() -> None:
    """Only the period's last day is "so far"; an older incomplete one says when it was read.

    A day is stored incomplete while it is the server's newest; when the server then went
    down, it stays so. Drawn hatched as "day in progress" twelve days before the end, it
    told of a count still going on that had stopped long before.
    """
    fig = tag_days_figure(NAME, HOST, stale_month(), first=FIRST, last=LAST, options=GraphOptions())
    (ax,) = fig.axes
    (today,) = days_in_progress(ax)
    assert today.get_x() + today.get_width() / 2 == pytest.approx(centre(LAST))
    (old,) = days_incomplete(ax)
    assert old.get_x() + old.get_width() / 2 == pytest.approx(centre(FIRST + timedelta(days=9)))
    assert old.get_height() == 190
    # Unlike a complete day (solid, no outline) and the day in progress (hatched).
    assert not old.get_hatch()
    assert old.get_linestyle() not in ("-", "solid")
    assert to_rgba(old.get_facecolor()) != to_rgba(THEMES["light"].palette[0])
    assert legend_texts(ax) == [
        "uses a day",
        "day in progress (so far)",
        "incomplete: read until 03:00",
        "accounts a day",
        "not recorded",
    ]
    (square,) = [line for line in ax.get_lines() if line.get_gid() == "incomplete-0"]
    assert (ys(square), square.get_marker()) == ([49.0], "s")
    (dot,) = [line for line in ax.get_lines() if line.get_gid() == "so-far-0"]
    assert ys(dot) == [3.0]
    assert texts_with_gid(ax, "latest") == ["7 so far"]


def test_a_period_ending_on_an_incomplete_older_day_says_until_when() -> None:
    """The newest day shown, incomplete but not the period's last: "until 03:00", no "so far"."""
    stored = [day for day in stale_month() if day.day <= FIRST + timedelta(days=9)]
    fig = tag_days_figure(NAME, HOST, stored, first=FIRST, last=LAST, options=GraphOptions())
    (ax,) = fig.axes
    assert days_in_progress(ax) == []
    assert texts_with_gid(ax, "latest") == ["190 until 03:00"]
    assert "day in progress (so far)" not in legend_texts(ax)


def test_a_comparison_marks_an_older_incomplete_day_apart_from_the_day_in_progress() -> None:
    """An open square, with its own legend entry; "so far" only for the period's last day."""
    fig = tag_comparison_figure(
        NAME,
        [TagSeries(HOST, stale_month()), TagSeries("other.example", days(9, today=False))],
        "uses",
        first=FIRST,
        last=LAST,
        options=GraphOptions(),
    )
    (ax,) = fig.axes
    marks = {
        line.get_gid(): (ys(line), line.get_marker())
        for line in ax.get_lines()
        if (line.get_gid() or "").startswith(("so-far", "incomplete"))
    }
    assert marks == {
        "so-far-0": ([7.0], "o"),
        "incomplete-0": ([190.0], "s"),
        "so-far-key": ([], "o"),
        "incomplete-key": ([], "s"),
    }
    assert legend_texts(ax) == [
        "mastodon.example: 380 on 2026-03-29, 7 so far",
        "other.example: 180 on 2026-03-09",
        "day in progress (so far)",
        "incomplete: read until 03:00",
    ]
    alone = tag_comparison_figure(
        NAME,
        [TagSeries(HOST, [day for day in stale_month() if day.day < LAST])],
        "uses",
        first=FIRST,
        last=LAST,
        options=GraphOptions(),
    )
    assert legend_texts(alone.axes[0]) == [
        "mastodon.example: 380 on 2026-03-29",
        "incomplete: read until 03:00",
    ]


# --- comparisons --------------------------------------------------------------------------------


def test_a_comparison_draws_a_line_per_instance_broken_at_its_gaps() -> None:
    """Each instance's complete days are its line, in runs; its day so far an open dot."""
    other = days(20, skip=(3,))
    fig = tag_comparison_figure(
        NAME,
        [TagSeries(HOST, MONTH), TagSeries("other.example", other)],
        "uses",
        first=FIRST,
        last=LAST,
        options=GraphOptions(),
    )
    (ax,) = fig.axes
    assert fig.get_suptitle() == "#Caturday — uses a day on 2 instances, 2026-03-01 to 2026-03-30"
    runs = line_runs(ax)
    assert runs["data-0-0"] == [100.0 + 10 * n for n in range(12)]
    assert runs["data-0-1"] == [100.0 + 10 * n for n in range(16, 29)]
    assert runs["data-1-0"] == [100.0, 110.0, 120.0]
    assert runs["data-1-1"] == [100.0 + 10 * n for n in range(4, 19)]
    dots = {
        line.get_gid(): ys(line)
        for line in ax.get_lines()
        if (line.get_gid() or "").startswith(("so-far", "incomplete"))
    }
    # other.example's 20th is incomplete but not the period's last day: no longer in progress.
    assert dots == {
        "so-far-0": [7.0],
        "incomplete-1": [7.0],
        "so-far-key": [],
        "incomplete-key": [],
    }
    assert legend_texts(ax) == [
        "mastodon.example: 380 on 2026-03-29, 7 so far",
        "other.example: 280 on 2026-03-19",
        "day in progress (so far)",
        "incomplete: read until its last reading",
    ]
    assert ax.get_ylim()[0] == 0


def test_a_comparison_of_accounts_and_of_an_instance_without_days() -> None:
    """metric=accounts draws accounts; an instance with nothing recorded is listed as such."""
    done = days(5, today=False)
    fig = tag_comparison_figure(
        NAME,
        [TagSeries(HOST, done), TagSeries("quiet.example", [])],
        "accounts",
        first=FIRST,
        last=FIRST + timedelta(days=4),
        options=GraphOptions(),
    )
    (ax,) = fig.axes
    assert line_runs(ax) == {"data-0-0": [40.0, 41.0, 42.0, 43.0, 44.0]}
    assert legend_texts(ax) == [
        "mastodon.example: 44 on 2026-03-05",
        "quiet.example: no day recorded",
    ]
    nothing = tag_comparison_figure(
        NAME, [TagSeries(HOST, [])], "uses", first=FIRST, last=LAST, options=GraphOptions()
    )
    assert texts_with_gid(nothing.axes[0], "note") == ["No day recorded in this period"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: tag_comparison_figure(
                NAME,
                [],
                "followers",  # type: ignore[arg-type]
                first=FIRST,
                last=LAST,
                options=GraphOptions(),
            ),
            "metric must be one of uses, accounts",
        ),
        (
            lambda: tag_comparison_figure(
                NAME,
                [TagSeries(f"h{n}.example", []) for n in range(21)],
                "uses",
                first=FIRST,
                last=LAST,
                options=GraphOptions(),
            ),
            "at most 20 series",
        ),
        (
            lambda: tag_days_figure(NAME, HOST, [], first=LAST, last=FIRST, options=GraphOptions()),
            "must not be after",
        ),
    ],
    ids=["unknown metric", "too many", "backwards"],
)
def test_bad_arguments_are_refused(call: Callable[[], object], message: str) -> None:
    """Unknown metrics, too many instances and backwards periods raise ValueError."""
    with pytest.raises(ValueError, match=message):
        call()


# --- from storage -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recorded", "since", "until", "expected"),
    [
        ([date(2026, 3, 1), date(2026, 3, 20)], None, None, (date(2026, 3, 1), date(2026, 3, 20))),
        (
            [date(2026, 3, 19), date(2026, 3, 20)],
            None,
            None,
            (date(2026, 3, 14), date(2026, 3, 20)),
        ),
        ([], None, None, (date(2026, 4, 3), date(2026, 4, 9))),
        (
            [date(2026, 3, 1)],
            datetime(2026, 3, 5, 17, tzinfo=UTC),
            None,
            (date(2026, 3, 5), date(2026, 4, 9)),
        ),
        (
            [date(2026, 3, 1)],
            None,
            datetime(2026, 3, 31, 23, 59, tzinfo=UTC),
            (date(2026, 3, 1), date(2026, 3, 31)),
        ),
        ([], None, datetime(1, 1, 2, tzinfo=UTC), (date(1, 1, 1), date(1, 1, 2))),
    ],
    ids=["the history", "at least a week", "nothing: the last week", "since", "until", "year 1"],
)
def test_the_days_a_graph_shows(
    recorded: list[date],
    since: datetime | None,
    until: datetime | None,
    expected: tuple[date, date],
) -> None:
    """As asked; open ends closed by the recorded days; never less than a week by default."""
    end = until or datetime(2026, 4, 9, 12, tzinfo=UTC)
    assert MIN_TAG_DAYS == 7
    assert tag_days_period(recorded, since, until, end) == expected


async def _tracked(
    db: Database, host: str, name: str = "Caturday", port: int | None = None
) -> TagRecord:
    store = TagStore(db)
    address = InstanceAddress(host, port=port)
    tag = await store.track(address, parse_tag_name(name), midnight(FIRST))
    history = tuple(TagDay(d.day, d.uses, d.accounts, d.complete) for d in MONTH)
    await store.store(tag.id, TagReading(name, None, history), midnight(LAST))
    return tag


async def test_tag_graph_draws_one_tag_or_compares_several(db: Database) -> None:
    """One tag: its days; several of one name: a comparison; others are refused."""
    store = TagStore(db)
    social = await _tracked(db, "social.example")
    other = await _tracked(db, "other.example")
    dogs = await _tracked(db, "social.example", "Dogs")
    now = midnight(LAST) + timedelta(hours=15)
    options = GraphOptions(fmt="svg")

    async def draw(tags: list[TagRecord], metric: TagMetric = "uses") -> bytes:
        return await tag_graph(
            store, tags, metric=metric, since=None, until=None, now=now, options=options
        )

    one = await draw([social])
    assert one == render_tag_days(
        "Caturday", "social.example", MONTH, first=FIRST, last=LAST, options=options
    )
    assert await draw([social, social]) == one
    both = await draw([other, social], "accounts")
    assert both == render_tag_comparison(
        "Caturday",
        [TagSeries("other.example", MONTH), TagSeries("social.example", MONTH)],
        "accounts",
        first=FIRST,
        last=LAST,
        options=options,
    )
    with pytest.raises(InvalidInput, match="one hashtag"):
        await draw([social, dogs])
    with pytest.raises(InvalidInput, match="at least one"):
        await draw([])
    many = [replace(social, id=n) for n in range(1, MAX_COMPARED + 2)]
    with pytest.raises(InvalidInput, match=f"at most {MAX_COMPARED} instances"):
        await draw(many)
    with pytest.raises(InvalidInput, match="since must be before until"):
        await tag_graph(store, [social], since=now, until=now, now=now, options=options)


async def test_a_history_not_read_for_days_ends_incomplete_not_in_progress(db: Database) -> None:
    """Drawn by default up to its last day recorded, which is not today: "read until".

    The default graph ends with the last day recorded; left incomplete when the server went
    down five days ago, that day used to be drawn as the day in progress.
    """
    store = TagStore(db)
    social = await _tracked(db, "social.example")
    later = midnight(LAST) + timedelta(days=5, hours=15)
    options = GraphOptions(fmt="svg")
    drawn_now = await tag_graph(store, [social], since=None, until=None, now=later, options=options)
    stored = await store.history(social.id, FIRST, LAST)
    assert drawn_now == render_tag_days(
        "Caturday",
        "social.example",
        stored,
        first=FIRST,
        last=LAST,
        options=options,
        today=later.date(),
    )
    figure = tag_days_figure(
        "Caturday",
        "social.example",
        stored,
        first=FIRST,
        last=LAST,
        options=options,
        today=later.date(),
    )
    assert days_in_progress(figure.axes[0]) == []
    assert texts_with_gid(figure.axes[0], "latest") == ["7 until 00:00"]
    assert b"day in progress" not in drawn_now
    assert b"incomplete: read until 00:00" in drawn_now


# --- fedimeter tag graph ------------------------------------------------------------------------


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The CLI on an SQLite file in the working directory; #Caturday on two instances."""
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    monkeypatch.setenv("FEDIMETER_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)

    async def seed() -> None:
        db = await Database.open(load_settings(database_url=url).database_url)
        try:
            await _tracked(db, "social.example")
            await _tracked(db, "other.example", port=8443)
        finally:
            await db.close()

    asyncio.run(seed())
    return url


def invoke(*args: str) -> Result:
    """Run ``fedimeter ARGS`` in-process."""
    return CliRunner().invoke(app, list(args))


def test_cli_draws_one_instance_into_its_default_file(cli_db: str, tmp_path: Path) -> None:
    """--on one instance: uses and accounts, into NAME-HOST.png."""
    result = invoke("tag", "graph", "#CATURDAY", "--on", "social.example", "--scale", "2")
    assert result.exit_code == 0, result.output
    png = tmp_path / "caturday-social.example.png"
    assert result.stdout.startswith(f"wrote {png.name} (")
    assert png_size(png.read_bytes()) == (2000, 1000)


def test_cli_compares_every_instance_of_a_tag(cli_db: str, tmp_path: Path) -> None:
    """No --on: every instance it is tracked on, one line each, of --metric."""
    result = invoke(
        "tag", "graph", "caturday", "--metric", "accounts", "--since", "2026-03-01",
        "--until", "2026-03-30", "-o", "both.svg", "--theme", "dark", "--width", "800",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = (tmp_path / "both.svg").read_bytes()
    assert svg_root(data).get("width") == "800px"
    texts = svg_texts(data)
    assert "#Caturday — accounts a day on 2 instances, 2026-03-01 to 2026-03-30" in texts
    assert "other.example:8443: 68 on 2026-03-29" in texts
    assert "social.example: 68 on 2026-03-29" in texts
    # Their 30 March was in progress when last read, months before the CLI's real today:
    # incomplete, not "so far".
    assert "incomplete: read until 00:00" in texts
    default = invoke("tag", "graph", "caturday")
    assert default.exit_code == 0, default.output
    assert (tmp_path / "caturday-uses.png").exists()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["caturday", "-o", "x.gif"], 2, "x.gif must end in .png or .svg"),
        (["caturday", "--since", "soon"], 2, "is not a date"),
        (["caturday", "--width", "10"], 2, "cannot draw that graph"),
        (["dogs"], 1, "#dogs is not tracked"),
        (["caturday", "--on", "elsewhere.example"], 1, "not tracked on elsewhere.example"),
        (["cat day"], 2, "is not a hashtag"),
    ],
    ids=["format", "date", "size", "untracked", "not there", "not a tag"],
)
def test_cli_refuses_with_one_line(cli_db: str, args: list[str], code: int, message: str) -> None:
    """What cannot be drawn is one line on stderr and an exit code; no file is written."""
    result = invoke("tag", "graph", *args)
    assert result.exit_code == code, result.output
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not list(Path().glob("*.png"))
    assert not list(Path().glob("*.gif"))
