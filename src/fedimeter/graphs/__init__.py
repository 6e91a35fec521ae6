"""Graphs of sample series as PNG or SVG bytes, drawn with matplotlib's Agg backend.

Pure and synchronous: no I/O, no pyplot, no global state. Rendering is CPU-bound; a server
calls these functions in a worker thread, and any number of threads may render at once.
``*_figure`` build the ``Figure`` without encoding it, for tests and other formats.
See docs/graphs.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fedimeter.graphs.encode import encode
from fedimeter.graphs.figures import combined_figure, comparison_figure, metric_figure
from fedimeter.graphs.instance import ACTIVITY, instance_metric_figure, weekly_activity_figure
from fedimeter.graphs.options import (
    MAX_SERIES,
    THEMES,
    Format,
    GraphOptions,
    InstanceMetric,
    InstanceSampleLike,
    Metric,
    SampleLike,
    Series,
    Theme,
    ThemeName,
    WeekLike,
)
from fedimeter.graphs.tags import (
    TAG_METRICS,
    TagDayLike,
    TagMetric,
    TagSeries,
    tag_comparison_figure,
    tag_days_figure,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import date, datetime

__all__ = [
    "ACTIVITY",
    "MAX_SERIES",
    "TAG_METRICS",
    "THEMES",
    "Format",
    "GraphOptions",
    "InstanceMetric",
    "InstanceSampleLike",
    "Metric",
    "SampleLike",
    "Series",
    "TagDayLike",
    "TagMetric",
    "TagSeries",
    "Theme",
    "ThemeName",
    "WeekLike",
    "combined_figure",
    "comparison_figure",
    "encode",
    "instance_metric_figure",
    "metric_figure",
    "render_combined",
    "render_comparison",
    "render_instance_metric",
    "render_metric",
    "render_tag_comparison",
    "render_tag_days",
    "render_weekly_activity",
    "tag_comparison_figure",
    "tag_days_figure",
    "weekly_activity_figure",
]

DEFAULT_OPTIONS = GraphOptions()


def render_metric(
    title_handle: str,
    metric: Metric,
    samples: Sequence[SampleLike],
    *,
    since: datetime,
    until: datetime,
    options: GraphOptions = DEFAULT_OPTIONS,
) -> bytes:
    """Draw one metric of one account from ``since`` to ``until``.

    ``title_handle`` is shown as given (``@alice@example.org``). Samples outside the period
    are left out; none or one gives a picture that says so.

    Returns:
        PNG or SVG bytes, as ``options`` asks.

    Raises:
        ValueError: an unknown metric, naive times, or ``since`` not before ``until``.
    """
    fig = metric_figure(title_handle, metric, samples, since=since, until=until, options=options)
    return encode(fig, options)


def render_combined(
    title_handle: str,
    samples: Sequence[SampleLike],
    *,
    since: datetime,
    until: datetime,
    options: GraphOptions = DEFAULT_OPTIONS,
) -> bytes:
    """Draw followers and statuses of one account in two panels sharing the time axis.

    Returns:
        PNG or SVG bytes, as ``options`` asks.

    Raises:
        ValueError: naive times, or ``since`` not before ``until``.
    """
    fig = combined_figure(title_handle, samples, since=since, until=until, options=options)
    return encode(fig, options)


def render_comparison(
    series: Sequence[Series],
    *,
    indexed: bool,
    since: datetime,
    until: datetime,
    title: str = "Comparison",
    options: GraphOptions = DEFAULT_OPTIONS,
) -> bytes:
    """Draw several accounts on one time axis, each labelled with its latest value.

    With ``indexed`` every series is rebased to 100 at its first non-zero point in the period.

    Returns:
        PNG or SVG bytes, as ``options`` asks.

    Raises:
        ValueError: more than ``MAX_SERIES`` series, naive times, or ``since`` not before
            ``until``.
    """
    fig = comparison_figure(
        series, title=title, indexed=indexed, since=since, until=until, options=options
    )
    return encode(fig, options)


def render_instance_metric(
    host: str,
    metric: InstanceMetric,
    samples: Sequence[InstanceSampleLike],
    *,
    since: datetime,
    until: datetime,
    options: GraphOptions = DEFAULT_OPTIONS,
) -> bytes:
    """Draw an instance's ``users`` or ``statuses`` from ``since`` to ``until``.

    Returns:
        PNG or SVG bytes, as ``options`` asks.

    Raises:
        ValueError: an unknown metric, naive times, or ``since`` not before ``until``.
    """
    fig = instance_metric_figure(host, metric, samples, since=since, until=until, options=options)
    return encode(fig, options)


def render_weekly_activity(
    host: str,
    weeks: Sequence[WeekLike],
    *,
    since: datetime,
    until: datetime,
    options: GraphOptions = DEFAULT_OPTIONS,
) -> bytes:
    """Draw an instance's statuses, logins and registrations per week, the week in progress hatched.

    Returns:
        PNG or SVG bytes, as ``options`` asks.

    Raises:
        ValueError: naive times, or ``since`` not before ``until``.
    """
    fig = weekly_activity_figure(host, weeks, since=since, until=until, options=options)
    return encode(fig, options)


def render_tag_days(
    name: str,
    host: str,
    days: Sequence[TagDayLike],
    *,
    first: date,
    last: date,
    options: GraphOptions = DEFAULT_OPTIONS,
    today: date | None = None,
) -> bytes:
    """Draw a tag's uses a day (bars) and accounts a day (a line) on one instance.

    An incomplete day is in progress only on ``today`` (by default ``last``); an older one is
    drawn as "read until" its last reading.

    Returns:
        PNG or SVG bytes, as ``options`` asks.

    Raises:
        ValueError: ``first`` after ``last``.
    """
    fig = tag_days_figure(name, host, days, first=first, last=last, options=options, today=today)
    return encode(fig, options)


def render_tag_comparison(
    name: str,
    series: Sequence[TagSeries],
    metric: TagMetric,
    *,
    first: date,
    last: date,
    options: GraphOptions = DEFAULT_OPTIONS,
    today: date | None = None,
) -> bytes:
    """Draw a tag's ``uses`` or ``accounts`` a day on several instances, one line each.

    An incomplete day is in progress only on ``today`` (by default ``last``).

    Returns:
        PNG or SVG bytes, as ``options`` asks.

    Raises:
        ValueError: an unknown metric, more than ``MAX_SERIES`` series, or ``first`` after
            ``last``.
    """
    fig = tag_comparison_figure(
        name, series, metric, first=first, last=last, options=options, today=today
    )
    return encode(fig, options)
