"""Drawing graphs from storage, off the event loop: accounts, instances and hashtags.

Accounts one at a time or several compared; a hashtag on one instance, or on several compared.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar

from fedimeter.engagement_tracking import engagement_view
from fedimeter.errors import InvalidInput
from fedimeter.graphs import (
    MAX_SERIES,
    GraphOptions,
    Metric,
    Series,
    TagMetric,
    TagSeries,
    render_combined,
    render_comparison,
    render_instance_metric,
    render_metric,
    render_tag_comparison,
    render_tag_days,
    render_weekly_activity,
)
from fedimeter.graphs.engagement import EngagementMetric, render_engagement
from fedimeter.graphs.options import METRICS

if TYPE_CHECKING:
    from collections.abc import Hashable, Iterable, Sequence

    from fedimeter.domain.engagement import Bucket
    from fedimeter.storage.engagement import EngagementStore
    from fedimeter.storage.instances import InstanceStore
    from fedimeter.storage.records import AccountRecord, InstanceRecord
    from fedimeter.storage.repository import Repository
    from fedimeter.storage.tags import TagRecord, TagStore

__all__ = [
    "MAX_COMPARED",
    "GraphMetric",
    "InstanceGraphMetric",
    "TagGraphMetric",
    "account_graph",
    "comparison_graph",
    "distinct_compared",
    "engagement_graph",
    "graph_options",
    "instance_graph",
    "tag_days_period",
    "tag_graph",
]

GraphMetric = Literal["followers", "following", "statuses", "combined"]

#: The shortest period a graph shows, so a fresh account's first sample is not a dot at the edge.
MIN_SPAN = timedelta(days=1)
#: The most accounts one comparison draws (the figures tell no more lines apart).
MAX_COMPARED = MAX_SERIES

_H = TypeVar("_H", bound="Hashable")


def graph_options(
    fmt: str, theme: str = "light", scale: float = 1.0, width: int = 1000, height: int = 500
) -> GraphOptions:
    """Graph options from what a person or a request asked for.

    Raises:
        InvalidInput: a format, theme, scale or size no graph can be drawn with.
    """
    try:
        return GraphOptions(
            fmt=fmt,  # type: ignore[arg-type]  # validated by GraphOptions
            theme=theme,  # type: ignore[arg-type]
            scale=scale,
            width_px=width,
            height_px=height,
        )
    except ValueError as exc:
        raise InvalidInput(f"cannot draw that graph: {exc}") from None


def distinct_compared(items: Iterable[_H]) -> list[_H]:
    """The distinct ``items`` in the order first given, if one graph can compare them.

    Returns:
        One to ``MAX_COMPARED`` items, repeats left out.

    Raises:
        InvalidInput: no item, or more than ``MAX_COMPARED`` distinct ones.
    """
    chosen = list(dict.fromkeys(items))
    if not chosen:
        raise InvalidInput("name at least one account to draw")
    if len(chosen) > MAX_COMPARED:
        raise InvalidInput(
            f"one graph compares at most {MAX_COMPARED} accounts, not {len(chosen)}:"
            " draw them in several graphs"
        )
    return chosen


async def account_graph(
    repo: Repository,
    account: AccountRecord,
    *,
    metric: GraphMetric,
    since: datetime | None,
    until: datetime | None,
    now: datetime,
    options: GraphOptions,
) -> bytes:
    """One account's graph for ``[since, until]``; with neither, its whole history.

    Rendering is CPU work: it runs in a worker thread so a server keeps answering meanwhile.

    Raises:
        InvalidInput: since is not before until.
        StorageError: the database refused.
    """
    end = _end(since, until, now)
    samples = await repo.samples(account.id, since, end)
    start, end = _shown_period([samples], since, until, end)
    handle = str(account.handle)
    if metric == "combined":
        return await asyncio.to_thread(
            render_combined, handle, samples, since=start, until=end, options=options
        )
    return await asyncio.to_thread(
        render_metric, handle, metric, samples, since=start, until=end, options=options
    )


async def comparison_graph(
    repo: Repository,
    accounts: Sequence[AccountRecord],
    *,
    metric: Metric,
    indexed: bool,
    since: datetime | None,
    until: datetime | None,
    now: datetime,
    options: GraphOptions,
) -> bytes:
    """One metric of several accounts on one graph, optionally indexed to 100 at the start.

    With neither ``since`` nor ``until`` the graph spans the accounts' whole history, from
    the first sample of any of them to the last. An account given twice is drawn once.
    Rendering runs in a worker thread, as for ``account_graph``.

    Raises:
        InvalidInput: no account, more than ``MAX_COMPARED``, a metric that is not a count
            (``combined``), or since not before until.
        StorageError: the database refused.
    """
    if metric not in METRICS:
        raise InvalidInput(
            f"a comparison draws one of {', '.join(METRICS)}, not {metric!r}"
            " (combined draws one account)"
        )
    by_id = {account.id: account for account in accounts}
    chosen = [by_id[i] for i in distinct_compared(by_id)]
    end = _end(since, until, now)
    histories = [await repo.samples(account.id, since, end) for account in chosen]
    start, end = _shown_period(histories, since, until, end)
    series = [
        Series(str(account.handle), [(s.taken_at, int(getattr(s, metric))) for s in samples])
        for account, samples in zip(chosen, histories, strict=True)
    ]
    title = (
        f"{chosen[0].handle} — {metric}"
        if len(chosen) == 1
        else f"{metric.capitalize()} of {len(chosen)} accounts"
    )
    return await asyncio.to_thread(
        render_comparison,
        series,
        indexed=indexed,
        since=start,
        until=end,
        title=title,
        options=options,
    )


def _end(since: datetime | None, until: datetime | None, now: datetime) -> datetime:
    """The last moment to read samples up to: ``until``, else now.

    Raises:
        InvalidInput: since is not before that moment.
    """
    end = until or now
    if since is not None and since >= end:
        raise InvalidInput("since must be before until")
    return end


class _Timed(Protocol):
    @property
    def taken_at(self) -> datetime: ...


def _shown_period(
    histories: Sequence[Sequence[_Timed]],
    since: datetime | None,
    until: datetime | None,
    end: datetime,
) -> tuple[datetime, datetime]:
    """The period a graph shows: as asked, with open ends closed by the samples.

    "All of it" (neither end given) means the accounts' own history, not a window ending
    today in which an account measured long ago would be squeezed against the left edge.
    An open start is the first sample, and at least ``MIN_SPAN`` before the end.
    """
    firsts = [samples[0].taken_at for samples in histories if samples]
    if since is None and until is None and firsts:
        end = max(samples[-1].taken_at for samples in histories if samples)
    if since is not None:
        return since, end
    return min(min(firsts, default=end), end - MIN_SPAN), end


InstanceGraphMetric = Literal["users", "statuses", "activity"]


@dataclass(frozen=True, slots=True)
class _InstancePoint:
    """A stored instance sample as the instance graphs read it (known counts only)."""

    taken_at: datetime
    users: int
    statuses: int


@dataclass(frozen=True, slots=True)
class _Week:
    """A stored week as the weekly activity graph reads it."""

    start: date
    statuses: int
    logins: int
    registrations: int
    complete: bool


async def instance_graph(
    store: InstanceStore,
    instance: InstanceRecord,
    *,
    metric: InstanceGraphMetric,
    since: datetime | None,
    until: datetime | None,
    now: datetime,
    options: GraphOptions,
) -> bytes:
    """An instance's users, posts or weekly activity for ``[since, until]``; by default all.

    Samples where the instance did not give the count (a source off, or a value that could
    not be believed) are left out, so they show as gaps.

    Raises:
        InvalidInput: since is not before until.
        StorageError: the database refused.
    """
    end = _end(since, until, now)
    if metric == "activity":
        stored = await store.weeks(
            instance.id,
            None if since is None else (since - timedelta(days=7)).date(),
            end.date(),
        )
        weeks = [
            _Week(w.week_start, w.statuses, w.logins, w.registrations, w.complete) for w in stored
        ]
        start, end = _week_period(weeks, since, until, end)
        return await asyncio.to_thread(
            render_weekly_activity, instance.host, weeks, since=start, until=end, options=options
        )
    samples = await store.samples(instance.id, since, end)
    points = [
        _InstancePoint(s.taken_at, s.figures.users or 0, s.figures.statuses or 0)
        for s in samples
        if (s.figures.users if metric == "users" else s.figures.statuses) is not None
    ]
    start, end = _shown_period([points], since, until, end)
    return await asyncio.to_thread(
        render_instance_metric,
        instance.host,
        metric,
        points,
        since=start,
        until=end,
        options=options,
    )


def _week_period(
    weeks: Sequence[_Week], since: datetime | None, until: datetime | None, end: datetime
) -> tuple[datetime, datetime]:
    """The period a weekly graph shows: as asked, else from the first week to the last's end."""
    if since is None and until is None and weeks:
        end = datetime.combine(weeks[-1].start, time(), UTC) + timedelta(days=7)
    if since is not None:
        return since, end
    first = datetime.combine(weeks[0].start, time(), UTC) if weeks else end - MIN_SPAN
    return min(first, end - MIN_SPAN), end


TagGraphMetric = TagMetric
#: Days a tag's graph shows at least when no start is given: the week a server reports.
MIN_TAG_DAYS = 7


async def tag_graph(
    store: TagStore,
    tags: Sequence[TagRecord],
    *,
    metric: TagGraphMetric = "uses",
    since: datetime | None,
    until: datetime | None,
    now: datetime,
    options: GraphOptions,
) -> bytes:
    """A hashtag's days on one instance, or one ``metric`` of it compared on several.

    One tag draws its uses a day as bars and its accounts a day as a line (``metric`` is for
    comparisons). The graph covers whole UTC days: from the day of ``since`` to the day of
    ``until`` (default today); with neither, the days recorded (at least ``MIN_TAG_DAYS``).
    Days never recorded stay gaps; the day in progress (incomplete, and the day of ``until``
    or today) and older incomplete days (the server answered no more after them) are drawn
    apart (see ``graphs.tags``). Rendering runs in a worker thread, as for ``account_graph``.

    Raises:
        InvalidInput: no tag, more than ``MAX_COMPARED``, tags of different names, or since
            not before until.
        StorageError: the database refused.
    """
    chosen = list({tag.id: tag for tag in tags}.values())
    if not chosen:
        raise InvalidInput("name at least one tracked hashtag to draw")
    if len(chosen) > MAX_COMPARED:
        raise InvalidInput(
            f"one graph compares a hashtag on at most {MAX_COMPARED} instances, not"
            f" {len(chosen)}: name fewer of them"
        )
    if len({tag.key for tag in chosen}) > 1:
        raise InvalidInput("one graph draws one hashtag: compare it across instances, not tags")
    end = _end(since, until, now)
    histories = await store.histories(
        [tag.id for tag in chosen], None if since is None else since.date(), end.date()
    )
    first, last = tag_days_period(
        [day.day for days in histories.values() for day in days], since, until, end
    )
    # Only today may be in progress: the history drawn by default ends with the last day
    # recorded, maybe one left incomplete long ago, and a period may end on a day long past.
    tag = chosen[0]
    if len(chosen) == 1:
        return await asyncio.to_thread(
            render_tag_days,
            tag.name,
            tag.host,
            histories[tag.id],
            first=first,
            last=last,
            options=options,
            today=now.date(),
        )
    series = [TagSeries(one.host, histories[one.id]) for one in chosen]
    return await asyncio.to_thread(
        render_tag_comparison,
        tag.name,
        series,
        metric,
        first=first,
        last=last,
        options=options,
        today=now.date(),
    )


def tag_days_period(
    recorded: Sequence[date], since: datetime | None, until: datetime | None, end: datetime
) -> tuple[date, date]:
    """The first and last day a tag's graph shows: as asked, open ends closed by the days.

    With neither end, the days ``recorded`` (the tags' own history, not a window ending today
    in which an old history is squeezed to the left); an open start is the first day
    recorded, and never less than ``MIN_TAG_DAYS`` before the last day.
    """
    last = max(recorded) if since is None and until is None and recorded else end.date()
    if since is not None:
        return since.date(), last
    week = timedelta(days=MIN_TAG_DAYS - 1)
    return min([*recorded, last - week if last - date.min > week else date.min]), last


async def engagement_graph(
    store: EngagementStore,
    account_id: int,
    *,
    metric: EngagementMetric = "interactions",
    by: Bucket = "day",
    since: datetime,
    until: datetime,
    options: GraphOptions,
) -> bytes:
    """An account's engagement over ``[since, until)``, a bar (or dot) per day or week.

    ``metric`` is ``interactions`` (received per post), ``rate`` (the engagement rate) or
    ``activity`` (posts, replies and boosts made); see ``graphs.engagement``. Rendering runs
    in a worker thread, as for ``account_graph``.

    Raises:
        NotTracked: engagement was never on for the account.
        InvalidInput: the period is empty, or ``by`` is neither day nor week.
        StorageError: the database refused.
    """
    view = await engagement_view(store, account_id, since=since, until=until, by=by, top=0)
    if view.buckets:
        # Buckets cover only the days something was read: a period from 1970 is drawn over
        # the account's own days, not as a bar at the end of a 56-year axis.
        since = max(since, view.buckets[0].since)
        until = min(until, view.buckets[-1].until)
    return await asyncio.to_thread(
        render_engagement,
        f"@{view.state.account.handle.acct}",
        view.buckets,
        metric,
        by=by,
        since=since,
        until=until,
        options=options,
    )
