"""Reports over a period: per-account changes, trends, milestones and silence. Pure.

The caller loads, for each account, the samples of the period plus the last sample before the
period starts (so a change is measured from the state at the start) and the samples of the 30
days before ``until`` (for the trend), and passes them here with the clock's ``now``. Nothing
here reads the clock, the database or the network; renderers live in ``report_render``.

Definitions, all in UTC:

- **current**: the latest sample taken at or before ``until``.
- **base**: the latest sample taken at or before ``since``; an account with none (added during
  the period) is measured from its first sample inside the period and marked ``partial``.
- **change**: current minus base, count by count; **percent**: change over base (None when
  the base is 0); **per day**: change over the real time between the two samples (None under
  an hour, where a rate would be noise).
- **next milestone**: the first number of the sequence 10, 25, 50, 100, 250, 500, 1 000, ...
  (1, 2.5 and 5 times each power of ten from 10 up) above the current followers. Its date is
  projected from the least-squares slope of followers over the 30 days before ``until``.
- **series**: the followers and posts of every sample from base to current, both included
  (the samples the changes are measured over), oldest first, for a small chart.
- **silent**: the latest post (``last_status_at`` of the current sample) is more than
  ``silent_after_days`` whole days before ``now``'s UTC day, or the account never posted.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from operator import attrgetter
from typing import TYPE_CHECKING, Literal

from fedimeter.domain.analytics import Change, Sample

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from fedimeter.domain.engagement_report import EngagementLine
    from fedimeter.domain.instance_report import InstanceLine
    from fedimeter.domain.tag_report import TagLine

__all__ = [
    "TREND_WINDOW",
    "AccountHistory",
    "AccountLine",
    "Milestone",
    "Movement",
    "Report",
    "SampleLike",
    "SeriesPoint",
    "SortKey",
    "build_report",
    "follower_trend",
    "movement",
    "next_milestone",
]

SortKey = Literal["growth", "followers", "name"]

#: How far back from ``until`` the follower trend looks.
TREND_WINDOW = timedelta(days=30)
#: The trend needs samples spanning at least this long: a slope over minutes is noise.
_MIN_TREND_SPAN = timedelta(days=1)
#: Below this, a per-day average would extrapolate minutes into days.
_MIN_RATE_SPAN = timedelta(hours=1)
#: A projection further away than this says "not in any useful time", so it is dropped.
_MAX_PROJECTION_DAYS = 10 * 365.25
_SECONDS_PER_DAY = 86_400.0
_HALF_SECOND = 500_000  # microseconds
_MILESTONE_STEPS = (10, 25, 50)
_TAKEN_AT = attrgetter("taken_at")


SampleLike = Sample  # kept as this module's name for what it reads


@dataclass(frozen=True, slots=True)
class AccountHistory:
    """An account and its samples, as the caller loaded them.

    ``handle`` is ``user@domain``, with or without a leading ``@`` (the report stores it
    without). ``samples`` need not be sorted: the report sorts them by ``taken_at``.
    """

    handle: str
    samples: Sequence[SampleLike]
    display_name: str | None = None


@dataclass(frozen=True, slots=True)
class Movement:
    """How one count moved over the period."""

    start: int
    current: int
    change: int
    #: Change over ``start`` in percent; None when ``start`` is 0.
    percent: float | None
    #: Change per day over the real time between the two samples; None under an hour.
    per_day: float | None


@dataclass(frozen=True, slots=True)
class Milestone:
    """The next round number of followers and when the trend reaches it."""

    followers: int
    #: Projected moment (whole seconds, UTC); None when the trend is flat, falling, too short,
    #: or reaches it more than ten years after ``until``.
    eta: datetime | None


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """One sample's followers and posts, as a point of an account's chart over the period."""

    taken_at: datetime
    followers: int
    statuses: int


@dataclass(frozen=True, slots=True)
class AccountLine:
    """One account in a report. Every count field is None when the account has no data."""

    handle: str
    display_name: str | None
    #: When the current sample was taken.
    measured_at: datetime | None
    #: When the sample the changes start from was taken.
    base_at: datetime | None
    #: The account has no sample at or before ``since``: changes start inside the period.
    partial: bool
    followers: Movement | None
    following: Movement | None
    statuses: Movement | None
    #: Least-squares followers per day over the trend window; None with too few samples.
    trend_per_day: float | None
    milestone: Milestone | None
    last_status_at: date | None
    #: Whole days from the latest post to ``now``'s day; None when never posted or no data.
    days_since_post: int | None
    silent: bool
    #: The samples from base to current, both included, oldest first; empty without data.
    series: tuple[SeriesPoint, ...] = ()

    @property
    def has_data(self) -> bool:
        """Whether the account has a sample at or before ``until``."""
        return self.followers is not None

    @property
    def change(self) -> Change | None:
        """The three changes together, None without data."""
        if self.followers is None or self.following is None or self.statuses is None:
            return None
        return Change(self.followers.change, self.following.change, self.statuses.change)


@dataclass(frozen=True, slots=True)
class Report:
    """A period's report. Totals and ``silent`` cover every account, even beyond ``top``."""

    since: datetime
    until: datetime
    generated_at: datetime
    sort: SortKey
    silent_after_days: int
    #: The accounts shown, sorted, cut to ``top``.
    accounts: tuple[AccountLine, ...]
    #: All accounts given, shown or not.
    account_count: int
    accounts_with_data: int
    #: Sum of current followers over the accounts with data.
    total_followers: int
    #: Sum of the follower changes over the accounts with data.
    total_followers_change: int
    #: Silent accounts, longest silent first (never posted before all), then by handle.
    silent: tuple[AccountLine, ...]
    #: Tracked instances, by host (only in reports on every account; see instance_report).
    instances: tuple[InstanceLine, ...] = ()
    #: Tracked hashtags, by name then host (only in reports on every account; tag_report).
    tags: tuple[TagLine, ...] = ()
    #: The accounts with engagement on, by handle (domain/engagement_report.py).
    engagement: tuple[EngagementLine, ...] = ()


def next_milestone(followers: int) -> int:
    """The first of 10, 25, 50, 100, 250, 500, 1000, 2500, ... strictly above ``followers``."""
    scale = 1
    while True:
        for step in _MILESTONE_STEPS:
            if step * scale > followers:
                return step * scale
        scale *= 10


def follower_trend(samples: Sequence[SampleLike], until: datetime) -> float | None:
    """Least-squares followers per day over the samples in ``[until - 30 days, until]``.

    Returns None with fewer than two samples there or when they span less than a day.
    """
    window = [s for s in samples if until - TREND_WINDOW <= s.taken_at <= until]
    if len(window) < 2:  # noqa: PLR2004 - a line needs two points
        return None
    return _slope(window, min(s.taken_at for s in window), max(s.taken_at for s in window))


def _slope(window: Sequence[SampleLike], first: datetime, last: datetime) -> float | None:
    """``follower_trend`` of the samples in the window, the earliest and latest times given."""
    if last - first < _MIN_TREND_SPAN:
        return None
    xs = [(s.taken_at - first).total_seconds() / _SECONDS_PER_DAY for s in window]
    ys = [float(s.followers) for s in window]
    mean_x = math.fsum(xs) / len(xs)
    mean_y = math.fsum(ys) / len(ys)
    spread = math.fsum((x - mean_x) ** 2 for x in xs)
    return math.fsum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread


def _projected(current: int, target: int, slope: float | None, until: datetime) -> datetime | None:
    """When ``current`` followers growing by ``slope`` a day reach ``target``, or None."""
    if slope is None or slope <= 0:
        return None
    days = (target - current) / slope
    if days > _MAX_PROJECTION_DAYS:
        return None
    eta = until + timedelta(days=days)
    # Rounded to the whole second (the date is an estimate and float noise should not show),
    # and never at until itself: the milestone is still ahead of the current count.
    rounded = eta.replace(microsecond=0) + timedelta(
        seconds=1 if eta.microsecond >= _HALF_SECOND else 0
    )
    return max(rounded, until.replace(microsecond=0) + timedelta(seconds=1))


def movement(start: int, current: int, span: timedelta) -> Movement:
    """``start`` to ``current`` over ``span`` (per day is None under an hour)."""
    change = current - start
    per_day = None if span < _MIN_RATE_SPAN else change / (span.total_seconds() / _SECONDS_PER_DAY)
    return Movement(
        start=start,
        current=current,
        change=change,
        percent=None if start == 0 else change * 100 / start,
        per_day=per_day,
    )


def _aware_utc(name: str, moment: datetime) -> datetime:
    """``moment`` in UTC.

    Raises:
        ValueError: ``moment`` is naive.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} is a naive datetime: pass a timezone-aware one")
    return moment.astimezone(UTC)


def _line(
    history: AccountHistory,
    *,
    since: datetime,
    until: datetime,
    today: date,
    silent_after_days: int,
) -> AccountLine:
    """One account's line."""
    handle = history.handle.removeprefix("@")
    # Sorted once, then cut by binary search: a report over thousands of accounts spends its
    # time here, and every cut below is a prefix or a suffix of the sorted samples.
    samples = sorted(history.samples, key=_TAKEN_AT)
    times = [s.taken_at for s in samples]
    upto = bisect_right(times, until)
    if not upto:
        return AccountLine(
            handle=handle,
            display_name=history.display_name,
            measured_at=None,
            base_at=None,
            partial=False,
            followers=None,
            following=None,
            statuses=None,
            trend_per_day=None,
            milestone=None,
            last_status_at=None,
            days_since_post=None,
            silent=False,
        )
    current = samples[upto - 1]
    before = bisect_right(times, since, 0, upto)
    # The samples up to ``since`` are a prefix, so the base is the last of them or, with none
    # at the start, the first sample inside the period (current lies there, so one exists).
    period = samples[before - 1 if before else 0 : upto]
    base = period[0]
    span = current.taken_at - base.taken_at
    # The trend window is the samples up to ``until`` from ``until - TREND_WINDOW`` on.
    start = bisect_left(times, until - TREND_WINDOW, 0, upto)
    trend = (
        None
        if upto - start < 2  # noqa: PLR2004 - a line needs two points
        else _slope(samples[start:upto], times[start], times[upto - 1])
    )
    target = next_milestone(current.followers)
    last_post = current.last_status_at
    # A post dated after now (clock skew between servers) counts as today.
    days = None if last_post is None else max(0, (today - last_post).days)
    return AccountLine(
        handle=handle,
        display_name=history.display_name,
        measured_at=current.taken_at,
        base_at=base.taken_at,
        partial=not before,
        followers=movement(base.followers, current.followers, span),
        following=movement(base.following, current.following, span),
        statuses=movement(base.statuses, current.statuses, span),
        trend_per_day=trend,
        milestone=Milestone(target, _projected(current.followers, target, trend, until)),
        last_status_at=last_post,
        days_since_post=days,
        silent=days is None or days > silent_after_days,
        series=tuple([SeriesPoint(s.taken_at, s.followers, s.statuses) for s in period]),
    )


def _name_key(line: AccountLine) -> tuple[str, str]:
    """Case-insensitive handle, then the exact handle so equal names still order stably."""
    return (line.handle.casefold(), line.handle)


def _sorted(lines: Iterable[AccountLine], sort: SortKey) -> list[AccountLine]:
    """Lines in report order; accounts without data go last when sorting by a count."""
    if sort == "name":
        return sorted(lines, key=_name_key)

    def by_count(line: AccountLine) -> tuple[bool, int, tuple[str, str]]:
        movement = line.followers
        if movement is None:
            return (True, 0, _name_key(line))
        value = movement.change if sort == "growth" else movement.current
        return (False, -value, _name_key(line))

    return sorted(lines, key=by_count)


def _silence_key(line: AccountLine) -> tuple[float, tuple[str, str]]:
    """Never posted first, then the longest silence."""
    days = math.inf if line.days_since_post is None else line.days_since_post
    return (-days, _name_key(line))


def build_report(
    histories: Iterable[AccountHistory],
    *,
    since: datetime,
    until: datetime,
    now: datetime,
    silent_after_days: int = 30,
    sort: SortKey = "growth",
    top: int | None = None,
) -> Report:
    """The report for ``(since, until]`` as of ``now`` (see the module's definitions).

    ``top`` keeps the first accounts after sorting; totals and the silent list still cover
    them all.

    Raises:
        ValueError: a naive datetime, ``since`` not before ``until``, a negative
            ``silent_after_days``, a ``top`` below 1, or an unknown ``sort``.
    """
    since = _aware_utc("since", since)
    until = _aware_utc("until", until)
    now = _aware_utc("now", now)
    if since >= until:
        raise ValueError("since must be before until")
    if silent_after_days < 0:
        raise ValueError("silent_after_days must not be negative")
    if top is not None and top < 1:
        raise ValueError("top must be at least 1")
    if sort not in {"growth", "followers", "name"}:
        raise ValueError(f"unknown sort {sort!r}: use growth, followers or name")
    lines = [
        _line(h, since=since, until=until, today=now.date(), silent_after_days=silent_after_days)
        for h in histories
    ]
    with_data = [line.followers for line in lines if line.followers is not None]
    ordered = _sorted(lines, sort)
    return Report(
        since=since,
        until=until,
        generated_at=now,
        sort=sort,
        silent_after_days=silent_after_days,
        accounts=tuple(ordered if top is None else ordered[:top]),
        account_count=len(lines),
        accounts_with_data=len(with_data),
        total_followers=sum(m.current for m in with_data),
        total_followers_change=sum(m.change for m in with_data),
        silent=tuple(sorted((line for line in lines if line.silent), key=_silence_key)),
    )
