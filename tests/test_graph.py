"""Graphs: image bytes of the stated size and format, and what the figures show."""

from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.dates import date2num
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from fedimeter.graphs import (
    THEMES,
    Format,
    GraphOptions,
    Series,
    ThemeName,
    combined_figure,
    comparison_figure,
    metric_figure,
    render_combined,
    render_comparison,
    render_metric,
)
from fedimeter.graphs.drawing import renderer_of
from fedimeter.graphs.engagement import engagement_figure
from fedimeter.storage.records import SampleRecord

HANDLE = "@alice@example.org"
START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 4, 1, tzinfo=UTC)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
THOUSANDS = re.compile(r"^-?\d{1,3}(,\d{3})*$")


def sample(at: datetime, followers: int, statuses: int = 100) -> SampleRecord:
    """A stored sample of account 1."""
    return SampleRecord(
        account_id=1,
        taken_at=at,
        followers=followers,
        following=10,
        statuses=statuses,
        last_status_at=None,
        run_id=None,
    )


def daily(
    start: datetime, days: int, first: int = 12_000, *, skip: range = range(0)
) -> list[SampleRecord]:
    """One sample a day from ``start``, followers rising by 7 a day, days in ``skip`` missing."""
    return [
        sample(start + timedelta(days=n), first + 7 * n, 3_000 + 3 * n)
        for n in range(days)
        if n not in skip
    ]


QUARTER = daily(START, 90, skip=range(40, 52))  # 78 samples, a 12-day gap in February


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, after checking the signature."""
    assert data[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (length, kind) == (13, b"IHDR")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def svg_root(data: bytes) -> ET.Element:
    """The parsed root element of an SVG document."""
    root = ET.fromstring(data)  # noqa: S314 - our own output
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return root


def data_lines(ax: Axes) -> list[Line2D]:
    """The lines that carry samples (gid ``data-...``), not gap hints or markers."""
    return [line for line in ax.get_lines() if (line.get_gid() or "").startswith("data-")]


def ys(line: Line2D) -> list[float]:
    """The values a line draws."""
    return [float(y) for y in np.asarray(line.get_ydata(), dtype=float)]


def plotted_points(ax: Axes) -> int:
    """How many samples the axes draws."""
    return sum(len(ys(line)) for line in data_lines(ax))


def texts_with_gid(ax: Axes, gid: str) -> list[str]:
    """The strings of the axes' texts and annotations with that gid."""
    return [text.get_text() for text in ax.texts if text.get_gid() == gid]


def drawn(fig: Figure) -> Figure:
    """The figure after a layout pass, so ticks and their labels exist."""
    fig.draw_without_rendering()
    return fig


def num(moment: datetime) -> float:
    """Matplotlib's date number."""
    return float(date2num(moment))  # type: ignore[no-untyped-call]


RENDERS: dict[str, Callable[[GraphOptions], bytes]] = {
    "metric": lambda o: render_metric(
        HANDLE, "followers", QUARTER, since=START, until=END, options=o
    ),
    "combined": lambda o: render_combined(HANDLE, QUARTER, since=START, until=END, options=o),
    "comparison": lambda o: render_comparison(
        [
            Series(HANDLE, [(s.taken_at, s.followers) for s in QUARTER]),
            Series("@bob@example.net", [(s.taken_at, s.statuses) for s in QUARTER]),
        ],
        indexed=True,
        since=START,
        until=END,
        options=o,
    ),
    "empty": lambda o: render_metric(HANDLE, "statuses", [], since=START, until=END, options=o),
}


@pytest.mark.parametrize("kind", RENDERS)
@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_png_has_the_stated_pixel_size(kind: str, theme: ThemeName, scale: float) -> None:
    """Every graph kind is a PNG of width x height x scale pixels."""
    data = RENDERS[kind](GraphOptions(theme=theme, scale=scale, width_px=900, height_px=420))
    assert png_size(data) == (900 * scale, 420 * scale)


def test_png_size_is_exact_for_odd_sizes_and_fractional_scales() -> None:
    """1001 x 333 at 1.5 gives the rounded pixel size, not one pixel less."""
    options = GraphOptions(width_px=1001, height_px=333, scale=1.5)
    assert png_size(RENDERS["metric"](options)) == options.pixel_size == (1502, 500)


@pytest.mark.parametrize("kind", RENDERS)
def test_svg_states_its_size_in_pixels_and_no_date(kind: str) -> None:
    """An SVG parses, says width/height in pixels whatever the scale, and carries no date."""
    data = RENDERS[kind](GraphOptions(fmt="svg", scale=2.0, width_px=800, height_px=400))
    root = svg_root(data)
    assert (root.get("width"), root.get("height")) == ("800px", "400px")
    assert root.get("viewBox") == "0 0 576 288"  # the drawing, in points, scales to that size
    assert b"<dc:date>" not in data


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_renders_are_reproducible(fmt: Format) -> None:
    """The same input gives the same bytes twice."""
    options = GraphOptions(fmt=fmt)
    assert RENDERS["comparison"](options) == RENDERS["comparison"](options)


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_concurrent_renders_equal_sequential_ones(fmt: Format) -> None:
    """Four threads rendering every kind at once produce the sequential bytes: no shared state."""
    jobs = [(kind, GraphOptions(fmt=fmt, theme=theme)) for kind in RENDERS for theme in THEMES]
    expected = [RENDERS[kind](options) for kind, options in jobs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda job: RENDERS[job[0]](job[1]), jobs * 2))
    assert results == expected * 2


def test_metric_figure_shows_the_period_title_points_and_latest_value() -> None:
    """Title, x-limits, every sample, the labelled latest value and comma-separated ticks."""
    fig = drawn(
        metric_figure(HANDLE, "followers", QUARTER, since=START, until=END, options=GraphOptions())
    )
    (ax,) = fig.axes
    assert fig.get_suptitle() == "@alice@example.org — followers, 2026-01-01 to 2026-04-01"
    assert ax.get_xlim() == (num(START), num(END))
    assert plotted_points(ax) == len(QUARTER) == 78
    assert texts_with_gid(ax, "latest") == [f"{QUARTER[-1].followers:,}"] == ["12,623"]
    labels = [label.get_text() for label in ax.get_yticklabels()]
    assert len(labels) >= 3
    assert all(THOUSANDS.match(label) for label in labels), labels
    assert any("," in label for label in labels)
    assert all(float(tick) == int(tick) for tick in ax.get_yticks())
    assert ax.yaxis.get_offset_text().get_text() == ""


def test_a_gap_in_sampling_is_not_bridged_by_the_line() -> None:
    """A 12-day hole in daily samples splits the line in two, with one dotted hint between."""
    fig = metric_figure(
        HANDLE, "followers", QUARTER, since=START, until=END, options=GraphOptions()
    )
    (ax,) = fig.axes
    lines = data_lines(ax)
    assert [len(ys(line)) for line in lines] == [40, 38]
    hints = [line for line in ax.get_lines() if (line.get_gid() or "").startswith("gap-")]
    assert len(hints) == 1
    assert ys(hints[0]) == [
        ys(lines[0])[-1],
        ys(lines[1])[0],
    ]  # from the last before to the first after
    assert (hints[0].get_alpha() or 1.0) < 1.0
    assert hints[0].get_linewidth() < lines[0].get_linewidth()


def test_samples_outside_the_period_are_left_out() -> None:
    """Only samples from since to until are plotted; the latest label is the last inside."""
    since, until = START + timedelta(days=10), START + timedelta(days=20)
    fig = metric_figure(
        HANDLE, "followers", QUARTER, since=since, until=until, options=GraphOptions()
    )
    (ax,) = fig.axes
    assert plotted_points(ax) == 11
    assert texts_with_gid(ax, "latest") == ["12,140"]


def test_combined_figure_has_two_panels_sharing_the_time_axis() -> None:
    """Followers above statuses, same x-limits, each with its latest value."""
    fig = drawn(combined_figure(HANDLE, QUARTER, since=START, until=END, options=GraphOptions()))
    top, bottom = fig.axes
    assert fig.get_suptitle() == (
        "@alice@example.org — followers and statuses, 2026-01-01 to 2026-04-01"
    )
    assert [top.get_title(loc="left"), bottom.get_title(loc="left")] == ["followers", "statuses"]
    assert top.get_shared_x_axes().joined(top, bottom)
    assert top.get_xlim() == bottom.get_xlim() == (num(START), num(END))
    assert texts_with_gid(top, "latest") == ["12,623"]
    assert texts_with_gid(bottom, "latest") == ["3,267"]
    assert plotted_points(top) == plotted_points(bottom) == 78
    assert all(label.get_text() == "" for label in top.get_xticklabels())
    assert any(label.get_text() for label in bottom.get_xticklabels())


def test_indexed_comparison_starts_every_series_at_100() -> None:
    """Each series is rebased to 100 at its first point; the legend gives index and count."""
    series = [
        Series(HANDLE, [(s.taken_at, s.followers) for s in QUARTER]),
        Series(
            "@bob@example.net", [(START + timedelta(days=5), 40), (START + timedelta(days=9), 50)]
        ),
    ]
    fig = comparison_figure(series, indexed=True, since=START, until=END, options=GraphOptions())
    (ax,) = fig.axes
    firsts = [line for line in data_lines(ax) if line.get_gid() in {"data-0-0", "data-1-0"}]
    assert [ys(line)[0] for line in firsts] == [100.0, 100.0]
    assert ys(data_lines(ax)[-1])[-1] == 125.0
    assert "indexed" in fig.get_suptitle()
    legend = [text.get_text() for text in fig.legends[0].get_texts()]
    assert legend == ["@alice@example.org: 105.2 (12,623)", "@bob@example.net: 125.0 (50)"]


def test_plain_comparison_lists_latest_counts_and_empty_series() -> None:
    """Without indexing the values are counts; series with nothing to draw still get a row."""
    series = [
        Series(HANDLE, [(s.taken_at, s.followers) for s in QUARTER]),
        Series("@zero@example.net", [(START, 0), (START + timedelta(days=1), 0)]),
        Series("@nobody@example.net", []),
    ]
    fig = comparison_figure(series, indexed=False, since=START, until=END, options=GraphOptions())
    legend = [text.get_text() for text in fig.legends[0].get_texts()]
    assert legend == [
        "@alice@example.org: 12,623",
        "@zero@example.net: 0",
        "@nobody@example.net: no samples",
    ]
    indexed = comparison_figure(
        series, indexed=True, since=START, until=END, options=GraphOptions()
    )
    rows = [text.get_text() for text in indexed.legends[0].get_texts()]
    assert rows[1] == "@zero@example.net: all zero, no index"
    assert plotted_points(indexed.axes[0]) == 78


def test_comparison_without_samples_says_so() -> None:
    """No series with points in the period: the axes carry a note instead of lines."""
    fig = comparison_figure(
        [Series("@a@example.org", [])], indexed=True, since=START, until=END, options=GraphOptions()
    )
    assert texts_with_gid(fig.axes[0], "note") == ["No samples in this period"]
    assert plotted_points(fig.axes[0]) == 0


def test_zero_samples_say_no_samples_yet() -> None:
    """An empty period is a picture that says so, with the time axis still there."""
    fig = drawn(
        metric_figure(HANDLE, "followers", [], since=START, until=END, options=GraphOptions())
    )
    (ax,) = fig.axes
    assert texts_with_gid(ax, "note") == ["No samples yet for @alice@example.org in this period"]
    assert ax.get_xlim() == (num(START), num(END))
    assert plotted_points(ax) == 0
    assert list(ax.get_yticks()) == []


def test_one_sample_shows_its_value_and_a_note() -> None:
    """A lone sample is a marked point with its value and a note that a trend needs two."""
    fig = metric_figure(
        HANDLE, "followers", [sample(START + timedelta(days=3), 1_234_567)],
        since=START, until=END, options=GraphOptions(),
    )  # fmt: skip
    (ax,) = fig.axes
    assert plotted_points(ax) == 1
    assert data_lines(ax)[0].get_marker() == "o"
    assert texts_with_gid(ax, "latest") == ["1,234,567"]
    assert texts_with_gid(ax, "note") == ["Only one sample in this period: a trend needs two."]
    low, high = ax.get_ylim()
    assert low < 1_234_567 < high


@pytest.mark.parametrize(
    ("since", "until", "step"),
    [
        (datetime(2026, 3, 10, tzinfo=UTC), datetime(2026, 3, 12, tzinfo=UTC), timedelta(hours=1)),
        (START, START + timedelta(days=90), timedelta(days=1)),
        (datetime(2016, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC), timedelta(days=30)),
    ],
    ids=["2 days", "90 days", "10 years"],
)
def test_the_year_is_always_on_the_time_axis(
    since: datetime, until: datetime, step: timedelta
) -> None:
    """From two days to ten years, the tick labels or their offset show the year."""
    count = int((until - since) / step)
    samples = [sample(since + n * step, 100 + n) for n in range(count)]
    fig = drawn(
        metric_figure(
            HANDLE, "followers", samples, since=since, until=until, options=GraphOptions()
        )
    )
    (ax,) = fig.axes
    labels = [label.get_text() for label in ax.get_xticklabels()]
    shown = " ".join([*labels, ax.xaxis.get_offset_text().get_text()])
    assert re.search(r"\b(20\d\d)\b", shown), shown
    assert 3 <= len([label for label in labels if label]) <= 10, labels


def test_dark_theme_colours_the_background_and_text() -> None:
    """The dark theme draws on its dark background with its light text colour."""
    theme = THEMES["dark"]
    fig = metric_figure(
        HANDLE, "followers", QUARTER, since=START, until=END, options=GraphOptions(theme="dark")
    )
    assert fig.get_facecolor() == pytest.approx((13 / 255, 17 / 255, 23 / 255, 1.0))
    assert fig.axes[0].get_facecolor() == fig.get_facecolor()
    assert fig.texts[0].get_color() == theme.text
    assert data_lines(fig.axes[0])[0].get_color() == theme.palette[0]


def test_a_title_too_wide_for_the_image_breaks_before_its_period() -> None:
    """In a narrow image the period moves to a second title line."""
    fig = metric_figure(
        HANDLE, "followers", QUARTER, since=START, until=END, options=GraphOptions(width_px=400)
    )
    assert fig.texts[0].get_text() == "@alice@example.org — followers,\n2026-01-01 to 2026-04-01"


def test_a_title_too_wide_even_when_small_also_breaks_after_its_subject() -> None:
    """At a phone's width a long handle and metric take three lines, none wider than the image."""
    handle = "@someone.with.a.long.name@social.example.org"
    fig = engagement_figure(
        handle,
        [],
        "interactions",
        by="day",
        since=START,
        until=END,
        options=GraphOptions(width_px=400, height_px=360),
    )
    title = fig.texts[0]
    assert title.get_text() == (
        f"{handle} \u2014\ninteractions received per post a day,\n2026-01-01 to 2026-04-01"
    )
    renderer = renderer_of(fig)
    assert title.get_window_extent(renderer).width <= fig.bbox.width


def test_labels_with_dollar_signs_are_not_math() -> None:
    """A label like ``$a$`` is shown as written, not typeset as mathematics."""
    series = [Series("$money$", [(START, 5), (START + timedelta(days=1), 6)])]
    fig = comparison_figure(series, indexed=False, since=START, until=END, options=GraphOptions())
    (text,) = fig.legends[0].get_texts()
    assert text.get_text() == "$money$: 6"
    assert not text.get_parse_math()
    assert png_size(render_comparison(series, indexed=False, since=START, until=END)) == (1000, 500)


def test_period_with_times_is_titled_with_hours_in_utc() -> None:
    """A period not on midnights shows hours and minutes, converted to UTC."""
    paris = datetime(2026, 1, 1, 14, 30, tzinfo=timezone(timedelta(hours=1)))
    fig = metric_figure(
        HANDLE,
        "statuses",
        [],
        since=paris,
        until=paris + timedelta(hours=6),
        options=GraphOptions(),
    )
    assert fig.get_suptitle().endswith("2026-01-01 13:30 to 2026-01-01 19:30 UTC")


@pytest.mark.parametrize(
    ("since", "until", "message"),
    [
        (datetime(2026, 1, 1), END, "timezone-aware"),  # noqa: DTZ001 - the mistake under test
        (END, START, "must be before"),
        (START, START, "must be before"),
    ],
)
def test_a_bad_period_is_refused(since: datetime, until: datetime, message: str) -> None:
    """Naive or empty periods raise ValueError."""
    with pytest.raises(ValueError, match=message):
        render_metric(HANDLE, "followers", QUARTER, since=since, until=until)


def test_naive_sample_times_and_unknown_metrics_are_refused() -> None:
    """A sample without a time zone, or a metric that does not exist, raises ValueError."""
    naive = [sample(datetime(2026, 1, 2), 5)]  # noqa: DTZ001 - the mistake under test
    with pytest.raises(ValueError, match="no time zone"):
        render_metric(HANDLE, "followers", naive, since=START, until=END)
    with pytest.raises(ValueError, match="metric must be one of"):
        render_metric(HANDLE, "boosts", QUARTER, since=START, until=END)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fmt": "gif"},
        {"theme": "sepia"},
        {"scale": 0.0},
        {"scale": 5.0},
        {"width_px": 100},
        {"height_px": 5000},
        {"width_px": 4000, "height_px": 4000, "scale": 2.0},
    ],
)
def test_impossible_options_are_refused(kwargs: dict[str, Any]) -> None:
    """Unknown formats and themes, and sizes out of range, raise ValueError."""
    with pytest.raises(ValueError, match=r"must be|more than"):
        GraphOptions(**kwargs)
