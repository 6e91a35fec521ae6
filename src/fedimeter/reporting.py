"""Building a report from storage: choose accounts and a period, load their history, compute."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
from datetime import date, timedelta
from typing import TYPE_CHECKING

from fedimeter.domain.instance_report import InstanceLine, instance_line
from fedimeter.domain.report import TREND_WINDOW, AccountHistory, Report, SortKey, build_report
from fedimeter.domain.tag_report import TagLine, tag_line, whole_days
from fedimeter.domain.when import earlier, parse_when
from fedimeter.engagement_tracking import engagement_lines
from fedimeter.errors import InvalidInput
from fedimeter.storage.engagement import EngagementStore
from fedimeter.storage.instances import InstanceStore
from fedimeter.storage.tags import TagStore

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from datetime import datetime

    from fedimeter.storage.records import AccountRecord
    from fedimeter.storage.repository import Repository

__all__ = ["DEFAULT_PERIOD", "make_report", "report_period", "tag_lines"]

DEFAULT_PERIOD = "7d"
#: How far before a period an instance's base sample is looked for.
_BASE_WINDOW = timedelta(days=31)


def report_period(
    now: datetime, period: str | None, since: str | None, until: str | None
) -> tuple[datetime, datetime]:
    """The period a person asked for: ``--period 7d`` (ending now), or ``--since``/``--until``.

    Raises:
        InvalidInput: a value is not a date or an age, both forms are mixed, or the period
            is empty or reversed.
    """
    if period is not None and since is not None:
        raise InvalidInput("give either a period (such as 7d) or since/until, not both")
    end = now if until is None else parse_when(until, now, end_of_day=True)
    if since is not None:
        start = parse_when(since, now)
    else:
        text = (period or DEFAULT_PERIOD).strip().lower()
        if not text or text[-1] not in "hdw" or not text[:-1].isdigit() or int(text[:-1]) == 0:
            raise InvalidInput(
                f"{period!r} is not a period: use hours, days or weeks, such as 1d, 7d or 30d"
            )
        start = parse_when(text, end)  # an age counts back from the end of the period
    if start >= end:
        raise InvalidInput("the period is empty: since must be before until")
    return start, end


#: Reports over more accounts than this pause the cycle collector (see ``_collector_paused``).
#: Small reports do not need it, and under many of them at once (the API) pausing and
#: promoting every report's objects made memory grow until one long collection stalled the
#: server (236 -> 388 MiB in 36 s, then a 1.6 s pause; bench/api.py).
PAUSE_FROM_ACCOUNTS = 100


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector for the block (unless something else paused it already).

    A report over 10,000 accounts builds some 600,000 small objects (samples, chart points) that
    all live until it is done and form no reference cycles, so they are freed the moment the
    report is. While they pile up, every full collection walks all of them for nothing: that
    was a third of the report's time on SQLite and half on PostgreSQL (bench/report.py). The
    collector runs again as soon as the block ends, errors included; other tasks on the loop
    go without it for that second, and lose nothing either.

    Resumed as it was, the collector would first walk everything made in the block, all still
    young: 0.15 s of a report's 1.4 s with a year of history (bench/storage.py). So what the
    block made goes to the oldest generation at once (``freeze`` then ``unfreeze``, which
    move the lists without walking them), where reference counting frees it as it always
    does; a cycle another task made in that second waits for the next full collection. When
    something else froze objects (as a server may before forking), they stay frozen and the
    collector resumes plainly.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if not gc.get_freeze_count():
            gc.freeze()
            gc.unfreeze()
        gc.enable()


async def make_report(
    repo: Repository,
    *,
    since: datetime,
    until: datetime,
    now: datetime,
    accounts: Sequence[AccountRecord] | None = None,
    sort: SortKey = "growth",
    top: int | None = None,
    silent_after_days: int = 30,
) -> Report:
    """The report over ``[since, until]`` for ``accounts`` (every tracked account when None).

    Loads each account's samples from the earlier of ``since`` and 30 days before ``until``
    (the trend window), plus the last sample before, in two queries.

    Raises:
        StorageError: the database refused.
    """
    many = accounts is None or len(accounts) > PAUSE_FROM_ACCOUNTS
    with _collector_paused() if many else contextlib.nullcontext():
        if accounts is None:
            chosen = await repo.list_account_records()
            ids = None
        else:
            chosen = list(accounts)
            ids = [a.id for a in chosen]
        start = min(since, earlier(until, TREND_WINDOW))
        samples = await repo.histories(ids, start, until)
        histories = [
            AccountHistory(
                handle=account.handle.acct,
                samples=samples.get(account.id, []),
                display_name=account.display_name or None,
            )
            for account in chosen
        ]
        report = build_report(
            histories,
            since=since,
            until=until,
            now=now,
            sort=sort,
            top=top,
            silent_after_days=silent_after_days,
        )
    # Accounts with engagement on, of those chosen (engagement_tracking).
    engagement = await engagement_lines(EngagementStore(repo.db), ids, since=since, until=until)
    if accounts is not None:
        return dataclasses.replace(report, engagement=engagement) if engagement else report
    return dataclasses.replace(
        report,
        instances=await instance_lines(InstanceStore(repo.db), since, until),
        tags=await tag_lines(TagStore(repo.db), since, until),
        engagement=engagement,
    )


async def instance_lines(
    store: InstanceStore, since: datetime, until: datetime
) -> tuple[InstanceLine, ...]:
    """The report lines of every tracked instance, by host.

    Reads each instance's samples from a month before ``since`` (where a count's base is
    found; an instance not measured for longer is measured from inside the period) and its
    weeks up to ``until``.

    Raises:
        StorageError: the database refused.
    """
    lines = []
    for instance in await store.tracked():
        samples = await store.samples(instance.id, earlier(since, _BASE_WINDOW), until)
        weeks = await store.weeks(
            instance.id, earlier(since, timedelta(days=14)).date(), until.date()
        )
        lines.append(instance_line(instance.host, samples, weeks, since=since, until=until))
    return tuple(lines)


async def tag_lines(store: TagStore, since: datetime, until: datetime) -> tuple[TagLine, ...]:
    """The report lines of every tracked hashtag, by name then host.

    Reads each tag's days from a period's length before ``since`` (for the change) up to
    ``until``'s day (the day in progress), in one query.

    Raises:
        StorageError: the database refused.
    """
    tracked = await store.tracked()
    if not tracked:
        return ()
    period = whole_days(since, until)
    start = period[0] if period else since.date()
    # A period's length before it, but never before the calendar's first day (a period that
    # starts near the year 1 has no days before it to compare with anyway).
    first = start - timedelta(days=min(max(len(period), 1), (start - date.min).days))
    days = await store.histories([t.id for t in tracked], since=first, until=until.date())
    return tuple(
        tag_line(
            tag.name,
            tag.host,
            days[tag.id],
            since=since,
            until=until,
            failures=tag.consecutive_failures,
            last_error=tag.last_error,
        )
        for tag in tracked
    )
