"""Every graph's axes: whole-number ticks for counts, no repeated label, readable dates.

Small counts (a tag used once, an account with one follower) used to get ticks at 0, 0.2,
0.4 ... printed rounded as ``0 0 0 1 1 1``; date axes said ``08 15 22 Dec`` over ``2026-Dec``,
never naming November.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from fedimeter.domain.engagement import EngagementFigures
from fedimeter.graphs import (
    GraphOptions,
    Series,
    TagSeries,
    combined_figure,
    comparison_figure,
    instance_metric_figure,
    metric_figure,
    tag_comparison_figure,
    tag_days_figure,
    weekly_activity_figure,
)
from fedimeter.graphs.engagement import engagement_figure
from test_graph import drawn, sample
from test_graph_instance import InstanceSample, Week
from test_graph_tags import Day

if TYPE_CHECKING:
    from collections.abc import Callable

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

pytestmark = pytest.mark.filterwarnings("error::UserWarning")

FIRST, LAST = date(2026, 11, 7), date(2026, 12, 7)
SINCE = datetime(2026, 11, 7, tzinfo=UTC)
UNTIL = datetime(2026, 12, 7, tzinfo=UTC)
OPTIONS = GraphOptions()
PHONE = GraphOptions(width_px=400, height_px=360)


def tag_days(values: list[int]) -> list[Day]:
    """A day each from FIRST on with these uses (and accounts)."""
    return [Day(FIRST + timedelta(days=n), v, v) for n, v in enumerate(values)]


SMALL = [0, 1, 0, 0, 1, 1, 0, 1, 0, 0] * 3  # a tag used at most once a day
AT_MOST_ONE = [sample(SINCE + timedelta(days=n), n % 2, n % 2) for n in range(30)]


def bucket(n: int, posts: int, favourites: int, followers: int = 400) -> EngagementFigures:
    """Day ``n`` of the period's engagement."""
    start = SINCE + timedelta(days=n)
    return EngagementFigures(
        since=start,
        until=start + timedelta(days=1),
        posts=posts,
        replies=0,
        boosts=n % 2,
        favourites_received=favourites,
        boosts_received=0,
        replies_received=0,
        followers=followers,
    )


FEW = [bucket(n, 1, n % 2) for n in range(30)]


def counts_of(fig: Figure) -> list[Axes]:
    """The axes whose value axis is a count."""
    return drawn(fig).axes


COUNT_FIGURES: dict[str, Callable[[GraphOptions], Figure]] = {
    "tag days": lambda o: tag_days_figure(
        "Caturday", "x.example", tag_days(SMALL), first=FIRST, last=LAST, options=o
    ),
    "tag comparison": lambda o: tag_comparison_figure(
        "Caturday",
        [TagSeries("x.example", tag_days(SMALL)), TagSeries("y.example", tag_days([1] * 30))],
        "uses",
        first=FIRST,
        last=LAST,
        options=o,
    ),
    "account metric": lambda o: metric_figure(
        "@a@x.example", "followers", AT_MOST_ONE, since=SINCE, until=UNTIL, options=o
    ),
    "account combined": lambda o: combined_figure(
        "@a@x.example", AT_MOST_ONE, since=SINCE, until=UNTIL, options=o
    ),
    "account comparison": lambda o: comparison_figure(
        [
            Series("@a@x.example", [(s.taken_at, s.followers) for s in AT_MOST_ONE]),
            Series("@b@x.example", [(s.taken_at, 1) for s in AT_MOST_ONE]),
        ],
        indexed=False,
        since=SINCE,
        until=UNTIL,
        options=o,
    ),
    "instance users": lambda o: instance_metric_figure(
        "x.example",
        "users",
        [InstanceSample(SINCE + timedelta(days=n), n % 2, 1) for n in range(30)],
        since=SINCE,
        until=UNTIL,
        options=o,
    ),
    "weekly activity": lambda o: weekly_activity_figure(
        "x.example",
        [Week(FIRST + timedelta(weeks=n), n % 2, 1, n % 2) for n in range(4)],
        since=SINCE,
        until=UNTIL,
        options=o,
    ),
    "engagement activity": lambda o: engagement_figure(
        "@a@x.example", FEW, "activity", by="day", since=SINCE, until=UNTIL, options=o
    ),
}


def value_labels(ax: Axes) -> list[str]:
    """The value axis's labels as drawn, within its limits."""
    low, high = sorted(ax.get_ylim())
    return [
        tick.get_text()
        for tick, at in zip(ax.get_yticklabels(), ax.get_yticks(), strict=True)
        if low <= at <= high and tick.get_text()
    ]


@pytest.mark.parametrize("options", [OPTIONS, PHONE], ids=["wide", "phone"])
@pytest.mark.parametrize("kind", COUNT_FIGURES)
def test_a_count_axis_has_whole_ticks_and_no_repeated_label(
    kind: str, options: GraphOptions
) -> None:
    """Counts of 0 and 1: ticks at 0 and 1, never 0.2 printed as ``0``."""
    for ax in counts_of(COUNT_FIGURES[kind](options)):
        low, high = sorted(ax.get_ylim())
        ticks = [at for at in ax.get_yticks() if low <= at <= high]
        assert ticks, kind
        assert all(float(at).is_integer() for at in ticks), (kind, ticks)
        labels = value_labels(ax)
        assert len(labels) == len(set(labels)), (kind, labels)
        assert len(labels) >= 2, (kind, labels)


NOT_COUNTS: dict[str, Callable[[GraphOptions], Figure]] = {
    "indexed comparison": lambda o: comparison_figure(
        [
            Series("@a@x.example", [(s.taken_at, 1000 + s.followers) for s in AT_MOST_ONE]),
            Series("@b@x.example", [(s.taken_at, 1000) for s in AT_MOST_ONE]),
        ],
        indexed=True,
        since=SINCE,
        until=UNTIL,
        options=o,
    ),
    "interactions per post": lambda o: engagement_figure(
        "@a@x.example",
        [bucket(n, 4, n % 2) for n in range(30)],
        "interactions",
        by="day",
        since=SINCE,
        until=UNTIL,
        options=o,
    ),
    "engagement rate": lambda o: engagement_figure(
        "@a@x.example",
        [bucket(n, 1, 100 + n % 3, followers=10_000) for n in range(30)],
        "rate",
        by="day",
        since=SINCE,
        until=UNTIL,
        options=o,
    ),
}


@pytest.mark.parametrize("options", [OPTIONS, PHONE], ids=["wide", "phone"])
@pytest.mark.parametrize("kind", NOT_COUNTS)
def test_a_fractional_axis_never_repeats_a_label(kind: str, options: GraphOptions) -> None:
    """An index, a ratio or a percentage shows as many decimals as its ticks need."""
    (ax,) = drawn(NOT_COUNTS[kind](options)).axes
    labels = value_labels(ax)
    assert len(labels) >= 2, (kind, labels)
    assert len(labels) == len(set(labels)), (kind, labels)


def date_labels(ax: Axes) -> list[str]:
    """The time axis's labels within its limits."""
    low, high = sorted(ax.get_xlim())
    return [
        tick.get_text()
        for tick, at in zip(ax.get_xticklabels(), ax.get_xticks(), strict=True)
        if low - 1e-6 <= at <= high + 1e-6 and tick.get_text()
    ]


@pytest.mark.parametrize("options", [OPTIONS, PHONE], ids=["wide", "phone"])
@pytest.mark.parametrize("kind", [*COUNT_FIGURES, *NOT_COUNTS])
def test_a_month_of_days_names_each_month_and_says_the_year(
    kind: str, options: GraphOptions
) -> None:
    """2026-11-07 to 2026-12-07: ``Nov 8 ... Dec 1``, ``2026`` under them, never ``2026-Dec``."""
    figure = {**COUNT_FIGURES, **NOT_COUNTS}[kind](options)
    ax = drawn(figure).axes[-1]  # the bottom panel carries the time axis
    labels = date_labels(ax)
    assert labels, kind
    assert all(re.fullmatch(r"(Nov|Dec) \d{1,2}", label) for label in labels), (kind, labels)
    assert any(label.startswith("Nov") for label in labels), (kind, labels)
    assert ax.xaxis.get_offset_text().get_text() == "2026", kind


def test_a_year_of_months_puts_the_year_on_the_first_and_on_january() -> None:
    """Monthly ticks: ``Jan 2026 Mar May ... Jan 2027``, no offset needed."""
    since, until = datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    samples = [sample(since + timedelta(days=n), 100 + n) for n in range(365)]
    (ax,) = drawn(
        metric_figure(
            "@a@x.example", "followers", samples, since=since, until=until, options=OPTIONS
        )
    ).axes
    labels = date_labels(ax)
    assert labels[0] == "Jan 2026", labels
    assert labels[-1] == "Jan 2027", labels
    assert all(re.fullmatch(r"[A-Z][a-z]{2}( 20\d\d)?", label) for label in labels), labels
    assert ax.xaxis.get_offset_text().get_text() == ""


def test_days_across_a_new_year_give_both_years() -> None:
    """``Dec 21 ... Jan 4`` over both years, joined by an en dash."""
    first, last = date(2026, 12, 10), date(2027, 1, 20)
    some = [Day(first + timedelta(days=n), 3, 2) for n in range((last - first).days + 1)]
    (ax,) = drawn(
        tag_days_figure("x", "x.example", some, first=first, last=last, options=OPTIONS)
    ).axes
    labels = date_labels(ax)
    assert any(label.startswith("Dec") for label in labels), labels
    # A tick a Monday (at noon, under its bar): 2027 begins on a Friday.
    assert "Jan 4" in labels, labels
    assert ax.xaxis.get_offset_text().get_text() == "2026\u20132027"


def test_hours_name_the_day_at_midnight_and_give_the_dates() -> None:
    """Two days of hourly samples: ``Mar 11 06:00 12:00 ...`` over the ISO dates."""
    since, until = datetime(2026, 3, 10, tzinfo=UTC), datetime(2026, 3, 12, tzinfo=UTC)
    samples = [sample(since + timedelta(hours=n), 100 + n) for n in range(48)]
    (ax,) = drawn(
        metric_figure(
            "@a@x.example", "followers", samples, since=since, until=until, options=OPTIONS
        )
    ).axes
    labels = date_labels(ax)
    assert "Mar 11" in labels, labels
    assert any(re.fullmatch(r"\d\d:00", label) for label in labels), labels
    assert ax.xaxis.get_offset_text().get_text() == "2026-03-10 to 2026-03-12"
