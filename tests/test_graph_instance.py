"""Instance graphs: users and statuses over time, weekly activity as bars, the week in progress."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_rgba
from matplotlib.patches import Rectangle

from fedimeter.graphs import (
    THEMES,
    GraphOptions,
    InstanceSampleLike,
    ThemeName,
    WeekLike,
    instance_metric_figure,
    render_instance_metric,
    render_weekly_activity,
    weekly_activity_figure,
)
from test_graph import (
    THOUSANDS,
    drawn,
    num,
    plotted_points,
    png_size,
    svg_root,
    texts_with_gid,
)

# A label or bar that pushes the layout out of the figure warns; here that is a failure.
pytestmark = pytest.mark.filterwarnings("error::UserWarning")

HOST = "mastodon.example"
START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
END = START + timedelta(weeks=12)


@dataclass(frozen=True)
class InstanceSample:
    """What the storage layer will hand over for an instance measurement."""

    taken_at: datetime
    users: int
    statuses: int


@dataclass(frozen=True)
class Week:
    """One week of ``/api/v1/instance/activity``."""

    start: date
    statuses: int
    logins: int
    registrations: int
    complete: bool = True


def daily(since: datetime, days: int, step: timedelta = timedelta(days=1)) -> list[InstanceSample]:
    """Samples every ``step`` for ``days`` days: users +11, statuses +1,003 a step."""
    count = int(timedelta(days=days) / step)
    return [
        InstanceSample(since + n * step, 120_000 + 11 * n, 4_500_000 + 1_003 * n)
        for n in range(count)
    ]


def weeks(first: date, count: int, *, in_progress: bool = True) -> list[Week]:
    """``count`` weeks from ``first``; the last one still counting unless told otherwise."""
    return [
        Week(
            first + timedelta(weeks=n),
            statuses=100_000 + 1_000 * n,
            logins=20_000 + 10 * n,
            registrations=300 + n,
            complete=not (in_progress and n == count - 1),
        )
        for n in range(count)
    ]


QUARTER = daily(START, 84)
TWELVE = weeks(START.date(), 12)


@dataclass(frozen=True)
class Bar:
    """Where a week's bar stands and how tall it is."""

    x: float
    width: float
    height: float
    in_progress: bool


def complete_weeks(ax: Axes) -> PolyCollection:
    """The one collection of a panel that draws its complete weeks."""
    (found,) = [c for c in ax.collections if c.get_gid() == "weeks"]
    assert isinstance(found, PolyCollection)
    return found


def weeks_in_progress(ax: Axes) -> list[Rectangle]:
    """The hatched bars of weeks still counting."""
    found = [p for p in ax.patches if p.get_gid() == "week-in-progress"]
    assert all(isinstance(p, Rectangle) for p in found)
    return [p for p in found if isinstance(p, Rectangle)]


def bars(ax: Axes) -> list[Bar]:
    """Every week bar of a panel, complete or not, in time order."""
    corners = [np.asarray(path.vertices, dtype=float) for path in complete_weeks(ax).get_paths()]
    found = [
        Bar(
            float(xy[:, 0].min()),
            float(np.ptp(xy[:, 0])),
            float(xy[:, 1].max()),
            in_progress=False,
        )
        for xy in corners
    ]
    found += [
        Bar(bar.get_x(), bar.get_width(), bar.get_height(), in_progress=True)
        for bar in weeks_in_progress(ax)
    ]
    return sorted(found, key=lambda bar: bar.x)


RENDERS: dict[str, Callable[[GraphOptions], bytes]] = {
    "users": lambda o: render_instance_metric(
        HOST, "users", QUARTER, since=START, until=END, options=o
    ),
    "statuses": lambda o: render_instance_metric(
        HOST, "statuses", QUARTER[:1], since=START, until=END, options=o
    ),
    "weekly": lambda o: render_weekly_activity(HOST, TWELVE, since=START, until=END, options=o),
    "weekly-empty": lambda o: render_weekly_activity(HOST, [], since=START, until=END, options=o),
}


def test_instance_samples_and_weeks_fit_the_protocols() -> None:
    """The test records are what the storage layer must provide (mypy checks the assignment)."""
    sample: InstanceSampleLike = QUARTER[0]
    week: WeekLike = TWELVE[0]
    assert (sample.users, week.registrations) == (120_000, 300)


@pytest.mark.parametrize("kind", RENDERS)
@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_png_has_the_stated_pixel_size(kind: str, theme: ThemeName, scale: float) -> None:
    """Every instance graph is a PNG of width x height x scale pixels."""
    data = RENDERS[kind](GraphOptions(theme=theme, scale=scale, width_px=820, height_px=460))
    assert png_size(data) == (820 * scale, 460 * scale)


@pytest.mark.parametrize("kind", RENDERS)
def test_svg_parses_and_states_its_size(kind: str) -> None:
    """An instance SVG is XML whose root says its size in pixels, and carries no date."""
    data = RENDERS[kind](GraphOptions(fmt="svg", scale=2.0, width_px=700, height_px=350))
    root = svg_root(data)
    assert (root.get("width"), root.get("height")) == ("700px", "350px")
    assert b"<dc:date>" not in data


def test_weekly_svg_is_reproducible() -> None:
    """The same weeks give the same SVG bytes twice."""
    options = GraphOptions(fmt="svg")
    assert RENDERS["weekly"](options) == RENDERS["weekly"](options)


@pytest.mark.parametrize(("metric", "latest"), [("users", "120,913"), ("statuses", "4,583,249")])
def test_instance_metric_shows_host_period_points_and_latest(metric: str, latest: str) -> None:
    """Title with host and period, every sample, the latest value and comma-separated ticks."""
    fig = drawn(
        instance_metric_figure(
            HOST,
            metric,  # type: ignore[arg-type]
            QUARTER,
            since=START,
            until=END,
            options=GraphOptions(),
        )
    )
    (ax,) = fig.axes
    assert fig.get_suptitle() == f"mastodon.example — {metric}, 2026-01-05 to 2026-03-30"
    assert ax.get_xlim() == (num(START), num(END))
    assert plotted_points(ax) == 84
    assert texts_with_gid(ax, "latest") == [latest]
    labels = [label.get_text() for label in ax.get_yticklabels() if label.get_text()]
    assert len(labels) >= 3
    assert all(THOUSANDS.match(label) for label in labels), labels


def test_instance_metric_with_no_sample_or_one_says_so() -> None:
    """No sample: a note naming the host; one sample: its value and a note."""
    empty = instance_metric_figure(
        HOST, "users", [], since=START, until=END, options=GraphOptions()
    )
    assert texts_with_gid(empty.axes[0], "note") == [
        "No samples yet for mastodon.example in this period"
    ]
    one = instance_metric_figure(
        HOST, "users", QUARTER[3:4], since=START, until=END, options=GraphOptions()
    )
    assert plotted_points(one.axes[0]) == 1
    assert texts_with_gid(one.axes[0], "latest") == ["120,033"]
    assert texts_with_gid(one.axes[0], "note") == [
        "Only one sample in this period: a trend needs two."
    ]


@pytest.mark.parametrize(
    ("since", "days", "step"),
    [
        (datetime(2026, 3, 10, tzinfo=UTC), 2, timedelta(hours=1)),
        (START, 84, timedelta(days=1)),
        (datetime(2016, 1, 1, tzinfo=UTC), 3653, timedelta(days=7)),
    ],
    ids=["2 days", "12 weeks", "10 years"],
)
def test_the_year_is_on_the_time_axis_of_instance_graphs(
    since: datetime, days: int, step: timedelta
) -> None:
    """Users over two days to ten years, and weekly bars likewise, show the year and 3-10 ticks."""
    until = since + timedelta(days=days)
    count = max(2, int(timedelta(days=days) / timedelta(weeks=1)))
    options = GraphOptions()
    figures = [
        instance_metric_figure(
            HOST, "users", daily(since, days, step), since=since, until=until, options=options
        ),
        weekly_activity_figure(
            HOST, weeks(since.date(), count), since=since, until=until, options=options
        ),
    ]
    for fig in map(drawn, figures):
        ax = fig.axes[-1]
        labels = [label.get_text() for label in ax.get_xticklabels() if label.get_text()]
        shown = " ".join([*labels, ax.xaxis.get_offset_text().get_text()])
        assert re.search(r"\b20\d\d\b", shown), shown
        assert 3 <= len(labels) <= 10, labels


def test_weekly_activity_has_three_panels_of_one_bar_a_week() -> None:
    """Statuses, logins and registrations, one bar per week with the week's count."""
    fig = drawn(
        weekly_activity_figure(HOST, TWELVE, since=START, until=END, options=GraphOptions())
    )
    assert fig.get_suptitle() == "mastodon.example — weekly activity, 2026-01-05 to 2026-03-30"
    assert [ax.get_title(loc="left") for ax in fig.axes] == [
        "statuses per week",
        "logins per week",
        "registrations per week",
    ]
    for ax, field in zip(fig.axes, ("statuses", "logins", "registrations"), strict=True):
        assert [bar.height for bar in bars(ax)] == [getattr(w, field) for w in TWELVE]
        assert ax.get_xlim() == (num(START), num(END))
        assert ax.get_ylim()[0] == 0
        assert ax.get_ylim()[1] > max(getattr(w, field) for w in TWELVE)
    first = bars(fig.axes[0])[0]
    assert num(START) < first.x < first.x + first.width < num(START) + 7
    assert fig.axes[0].get_shared_x_axes().joined(fig.axes[0], fig.axes[2])
    assert not any(label.get_text() for label in fig.axes[0].get_xticklabels())
    ticks = [label.get_text() for label in fig.axes[1].get_yticklabels() if label.get_text()]
    assert any("," in tick for tick in ticks), ticks


def test_the_week_in_progress_is_hatched_pale_and_explained() -> None:
    """Only the incomplete week is hatched and pale; a legend and its label say so."""
    fig = weekly_activity_figure(HOST, TWELVE, since=START, until=END, options=GraphOptions())
    for ax, colour in zip(fig.axes, THEMES["light"].palette, strict=False):
        assert [bar.in_progress for bar in bars(ax)] == [False] * 11 + [True]
        (current,) = weeks_in_progress(ax)
        assert current.get_hatch() == "////"
        fill, ink = to_rgba(current.get_facecolor()), to_rgba(colour)
        assert fill[3] == 1.0  # opaque: the grid does not show through
        assert all(i < f <= 1.0 for i, f in zip(ink[:3], fill[:3], strict=True))  # paler
        assert to_rgba(current.get_edgecolor()) == to_rgba(colour)
        done = complete_weeks(ax)
        assert not done.get_hatch()
        assert [to_rgba(rgba) for rgba in np.asarray(done.get_facecolor())] == [to_rgba(colour)]
    (legend,) = fig.legends
    assert [text.get_text() for text in legend.get_texts()] == ["week in progress"]
    assert texts_with_gid(fig.axes[0], "latest") == ["111,000 so far"]
    assert texts_with_gid(fig.axes[2], "latest") == ["311 so far"]


def test_complete_weeks_need_no_legend_and_label_plain_values() -> None:
    """With every week complete there is no legend and the latest value has no "so far"."""
    done = weeks(START.date(), 12, in_progress=False)
    fig = weekly_activity_figure(HOST, done, since=START, until=END, options=GraphOptions())
    assert fig.legends == []
    assert texts_with_gid(fig.axes[1], "latest") == ["20,110"]
    assert not any(bar.in_progress for bar in bars(fig.axes[1]))
    assert len(bars(fig.axes[1])) == 12


def test_weeks_outside_the_period_are_left_out() -> None:
    """Only weeks that overlap since..until are drawn."""
    since, until = START + timedelta(weeks=3), START + timedelta(weeks=6, days=1)
    fig = weekly_activity_figure(HOST, TWELVE, since=since, until=until, options=GraphOptions())
    assert [bar.height for bar in bars(fig.axes[0])] == [103_000, 104_000, 105_000, 106_000]
    assert fig.legends == []  # the week in progress is outside


def test_weeks_may_start_as_dates_or_aware_datetimes_in_any_order() -> None:
    """A date is midnight UTC, an aware datetime is converted; bars come out in time order."""
    as_datetimes = [
        Week(
            datetime.combine(w.start, datetime.min.time(), tzinfo=UTC),
            w.statuses,
            w.logins,
            w.registrations,
            w.complete,
        )
        for w in reversed(TWELVE)
    ]
    by_date = weekly_activity_figure(HOST, TWELVE, since=START, until=END, options=GraphOptions())
    by_time = weekly_activity_figure(
        HOST, as_datetimes, since=START, until=END, options=GraphOptions()
    )
    assert bars(by_time.axes[0]) == bars(by_date.axes[0])
    naive = [Week(datetime(2026, 1, 5), 1, 1, 1)]  # noqa: DTZ001 - the mistake under test
    with pytest.raises(ValueError, match="no time zone"):
        weekly_activity_figure(HOST, naive, since=START, until=END, options=GraphOptions())


def test_no_week_is_one_panel_that_says_so_and_one_week_gets_a_note() -> None:
    """No weeks: one empty panel with a note; one week: its bars and a note on the top panel."""
    empty = weekly_activity_figure(HOST, [], since=START, until=END, options=GraphOptions())
    (ax,) = empty.axes
    assert texts_with_gid(ax, "note") == [
        "No weekly activity yet for mastodon.example in this period"
    ]
    assert ax.get_xlim() == (num(START), num(END))
    one = weekly_activity_figure(HOST, TWELVE[-1:], since=START, until=END, options=GraphOptions())
    assert [len(bars(ax)) for ax in one.axes] == [1, 1, 1]
    assert [ax.get_ylim()[1] > bars(ax)[0].height for ax in one.axes] == [True] * 3
    assert texts_with_gid(one.axes[0], "note") == [
        "Only one week in this period: a trend needs two."
    ]


def test_years_of_weeks_are_drawn_as_gapless_bars() -> None:
    """Ten years of weeks (2 px each) fill their whole week, so no moire of hairline gaps."""
    first = date(2016, 1, 4)
    many = weeks(first, 522)
    since = datetime.combine(first, datetime.min.time(), tzinfo=UTC)
    fig = weekly_activity_figure(
        HOST, many, since=since, until=since + timedelta(weeks=522), options=GraphOptions()
    )
    done = [bar for bar in bars(fig.axes[0]) if not bar.in_progress]
    assert len(done) == 521
    assert done[0].width == pytest.approx(7.0)
    assert not any(complete_weeks(fig.axes[0]).get_antialiased())
    short = weekly_activity_figure(HOST, TWELVE, since=START, until=END, options=GraphOptions())
    assert bars(short.axes[0])[0].width == pytest.approx(7 * 0.8)
    assert all(complete_weeks(short.axes[0]).get_antialiased())


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: instance_metric_figure(
                HOST,
                "logins",  # type: ignore[arg-type]  # the mistake under test
                [],
                since=START,
                until=END,
                options=GraphOptions(),
            ),
            "metric must be one of users, statuses",
        ),
        (
            lambda: weekly_activity_figure(
                HOST, [], since=END, until=START, options=GraphOptions()
            ),
            "must be before",
        ),
        (
            lambda: render_instance_metric(
                HOST,
                "users",
                [],
                since=datetime(2026, 1, 1),  # noqa: DTZ001 - the mistake under test
                until=END,
            ),
            "timezone-aware",
        ),
    ],
    ids=["unknown metric", "empty period", "naive period"],
)
def test_bad_instance_graph_arguments_are_refused(call: Callable[[], object], message: str) -> None:
    """Unknown metrics and impossible periods raise ValueError."""
    with pytest.raises(ValueError, match=message):
        call()
