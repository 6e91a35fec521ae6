"""Every graph's axes: whole-number ticks for counts, no repeated label, readable dates.

Small counts (a tag used once, an account with one follower) used to get ticks at 0, 0.2,
0.4 ... printed rounded as ``0 0 0 1 1 1``; date axes said ``08 15 22 Dec`` over ``2026-Dec``,
never naming November.
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class Day:
    """One day of a tag."""

    day: date
    uses: int
    accounts: int
    complete: bool = True


@dataclass(frozen=True)
class InstanceSample:
    """One measurement of an instance."""

    taken_at: datetime
    users: int
    statuses: int


@dataclass(frozen=True)
class Week:
    """One week of an instance's activity."""

    start: date
    statuses: int
    logins: int
    registrations: int
    complete: bool = True


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
