"""What alert rules are judged on, read from storage: recent figures and failing streaks.

Accounts are read as *points*, not whole windows: for each moment a window may start at, each
account's last sample at or before it and first sample after it, plus its newest sample. That
is all ``domain.alerts`` needs (a window's start value, a new account's first value, the
newest value), and costs one index seek per account and moment however long the windows are.
Instances are few, and a figure of theirs may be unknown in any sample (down, refused), so
their samples since the earliest window are read whole, with the last sample taken while up
before it. Hashtags are read by the day: every tracked tag's stored days since the earliest
day a window may reach, and the highest figures of its days before that (for milestones).
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING

from sqlalchemy import and_, func, or_, select

from fedimeter.domain.alerts import DayCount, Observation, Streak, Subject, Watched, WatchedDays
from fedimeter.domain.models import AccountState, Handle
from fedimeter.storage.records import SampleRecord
from fedimeter.storage.repository import Repository
from fedimeter.storage.tables import (
    account_samples,
    accounts,
    instance_samples,
    instances,
    run_failures,
    tag_history,
)
from fedimeter.storage.tags import TagStore

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import date, datetime

    from fedimeter.storage.database import Database
    from fedimeter.storage.tags import TagRecord

__all__ = [
    "account_streaks",
    "instance_streaks",
    "tag_streaks",
    "watched_accounts",
    "watched_instances",
    "watched_tags",
]

_ACCOUNT_METRICS = ("followers", "following", "statuses")
_INSTANCE_METRICS = ("users", "statuses", "domains", "peers", "active_month", "active_halfyear")
_LISTED = [s.value for s in AccountState if s is not AccountState.UNTRACKED]


def _account_subject(username: str, domain: str) -> Subject:
    handle = Handle(username, domain)
    return Subject("accounts", handle.key, str(handle))


async def watched_accounts(
    db: Database, moments: Iterable[datetime], now: datetime
) -> list[Watched]:
    """Every account (but the untracked) with its samples around ``moments`` and its newest.

    Raises:
        StorageError: the database refused.
    """
    repo = Repository(db)
    points: dict[int, dict[datetime, SampleRecord]] = {}

    def add(found: dict[int, SampleRecord]) -> None:
        for account_id, sample in found.items():
            points.setdefault(account_id, {})[sample.taken_at] = sample

    add(await repo.samples_at_or_before(now))
    for moment in sorted(set(moments)):
        add(await repo.samples_at_or_before(moment))
        add(await _first_samples_after(db, moment, now))
    watched: list[Watched] = []
    for account in await repo.list_account_records():
        samples = points.get(account.id)
        if not samples:
            continue
        observations = [
            Observation(s.taken_at, {m: getattr(s, m) for m in _ACCOUNT_METRICS})
            for _, s in sorted(samples.items())
        ]
        subject = Subject("accounts", account.handle.key, str(account.handle))
        watched.append(Watched(subject, observations))
    return watched


async def _first_samples_after(
    db: Database, moment: datetime, now: datetime
) -> dict[int, SampleRecord]:
    """Each listed account's first sample after ``moment`` (and at or before ``now``)."""
    later = account_samples.alias("later")
    first = (
        select(func.min(later.c.taken_at))
        .where(later.c.account_id == accounts.c.id, later.c.taken_at > moment)
        .correlate(accounts)
        .scalar_subquery()
    )
    # SampleRecord's fields, in order.
    columns = [account_samples.c[f.name] for f in dataclasses.fields(SampleRecord)]
    stmt = (
        select(*columns)
        .select_from(accounts)
        .join(
            account_samples,
            and_(
                account_samples.c.account_id == accounts.c.id, account_samples.c.taken_at == first
            ),
        )
        .where(accounts.c.state.in_(_LISTED), account_samples.c.taken_at <= now)
    )
    async with db.connect() as conn:
        return {row[0]: SampleRecord(*row) for row in await conn.execute(stmt)}


async def watched_instances(db: Database, since: datetime, now: datetime) -> list[Watched]:
    """Every tracked instance with its samples in ``[since, now]`` and its last up one before.

    Raises:
        StorageError: the database refused.
    """
    s = instance_samples
    tracked = select(instances.c.id).where(instances.c.tracked_at.is_not(None))
    before = s.alias("before")
    last_up_before = (
        select(func.max(before.c.taken_at))
        .where(
            before.c.instance_id == instances.c.id,
            before.c.up.is_(True),
            before.c.taken_at < since,
        )
        .correlate(instances)
        .scalar_subquery()
    )
    columns = [s.c.instance_id, s.c.taken_at, *(s.c[m] for m in _INSTANCE_METRICS)]
    earlier = (
        select(*columns)
        .select_from(instances)
        .join(s, and_(s.c.instance_id == instances.c.id, s.c.taken_at == last_up_before))
        .where(instances.c.tracked_at.is_not(None))
    )
    window = select(*columns).where(
        s.c.instance_id.in_(tracked), s.c.taken_at >= since, s.c.taken_at <= now
    )
    observations: dict[int, list[Observation]] = {}
    async with db.connect() as conn:
        for query in (earlier, window):
            for row in await conn.execute(query):
                values = {m: row._mapping[m] for m in _INSTANCE_METRICS}  # noqa: SLF001
                observations.setdefault(row.instance_id, []).append(
                    Observation(row.taken_at, values)
                )
        hosts = await conn.execute(
            select(instances.c.id, instances.c.host)
            .where(instances.c.tracked_at.is_not(None))
            .order_by(instances.c.host)
        )
        return [
            Watched(
                Subject("instances", row.host, row.host),
                sorted(observations[row.id], key=lambda o: o.taken_at),
            )
            for row in hosts
            if row.id in observations
        ]


async def account_streaks(db: Database, min_rounds: int) -> list[Streak]:
    """Active accounts that failed ``min_rounds`` rounds in a row or more, with each streak's start.

    A streak starts at the account's first recorded failure after its last sample.

    Raises:
        StorageError: the database refused.
    """
    failing = select(accounts.c.id).where(
        accounts.c.state == AccountState.ACTIVE.value,
        accounts.c.consecutive_failures >= min_rounds,
    )
    rf = run_failures
    last_ok = (
        select(func.max(account_samples.c.taken_at))
        .where(account_samples.c.account_id == rf.c.account_id)
        .correlate(rf)
        .scalar_subquery()
    )
    starts_stmt = (
        select(rf.c.account_id, func.min(rf.c.at).label("since"))
        .where(rf.c.account_id.in_(failing), or_(last_ok.is_(None), rf.c.at > last_ok))
        .group_by(rf.c.account_id)
    )
    rows_stmt = (
        select(
            accounts.c.id,
            accounts.c.username,
            accounts.c.domain,
            accounts.c.consecutive_failures,
            accounts.c.last_error,
        )
        .where(accounts.c.id.in_(failing))
        .order_by(accounts.c.acct_key)
    )
    async with db.connect() as conn:
        starts = {row.account_id: row.since for row in await conn.execute(starts_stmt)}
        return [
            Streak(
                subject=_account_subject(row.username, row.domain),
                rounds=row.consecutive_failures,
                since=starts[row.id],
                reason=row.last_error,
            )
            for row in await conn.execute(rows_stmt)
            if row.id in starts
        ]


async def instance_streaks(db: Database, min_rounds: int) -> list[Streak]:
    """Tracked instances whose last ``min_rounds`` samples or more were all down.

    A streak starts at the first sample after the last one taken while up.

    Raises:
        StorageError: the database refused.
    """
    s = instance_samples
    up = s.alias("up")
    last_up = (
        select(func.max(up.c.taken_at))
        .where(up.c.instance_id == instances.c.id, up.c.up.is_(True))
        .correlate(instances)
        .scalar_subquery()
    )
    newest = (
        select(func.max(s.c.taken_at))
        .where(s.c.instance_id == instances.c.id)
        .correlate(instances)
        .scalar_subquery()
    )
    candidates = select(
        instances.c.id, instances.c.host, last_up.label("last_up"), newest.label("newest")
    ).where(instances.c.tracked_at.is_not(None))
    streaks: list[Streak] = []
    async with db.connect() as conn:
        for row in list(await conn.execute(candidates.order_by(instances.c.host))):
            if row.newest is None or row.newest == row.last_up:
                continue  # never measured, or up at the newest measurement
            after = [s.c.instance_id == row.id]
            if row.last_up is not None:
                after.append(s.c.taken_at > row.last_up)
            counted = (
                await conn.execute(select(func.count(), func.min(s.c.taken_at)).where(*after))
            ).one()
            if counted[0] < min_rounds:
                continue
            sources = (
                await conn.execute(
                    select(s.c.sources).where(s.c.instance_id == row.id, s.c.taken_at == row.newest)
                )
            ).scalar_one()
            streaks.append(
                Streak(
                    subject=Subject("instances", row.host, row.host),
                    rounds=counted[0],
                    since=counted[1],
                    reason=_down_reason(sources),
                )
            )
    return streaks


def _down_reason(sources: str) -> str | None:
    """The distinct reasons the sources gave, in one line."""
    try:
        items = json.loads(sources)
    except ValueError:  # pragma: no cover - written by InstanceStore.store only
        return None
    details = [
        str(i.get("detail") or i.get("status"))
        for i in items
        if i.get("status") != "ok" and not str(i.get("detail", "")).startswith("not offered by")
    ]
    reasons = list(dict.fromkeys(d for d in details if d))
    return "; ".join(reasons) or None


def _tag_subject(tag: TagRecord) -> Subject:
    """``caturday@mastodon.social``, read as ``#Caturday on mastodon.social``."""
    return Subject("tags", f"{tag.key}@{tag.host}", tag.label)


async def watched_tags(db: Database, since: date, *, peaks: bool = True) -> list[WatchedDays]:
    """Every tracked tag with its stored days from ``since`` on.

    With ``peaks``, also the highest uses and accounts of its stored days before ``since``.

    Raises:
        StorageError: the database refused.
    """
    store = TagStore(db)
    tracked = await store.tracked()
    if not tracked:
        return []
    histories = await store.histories([t.id for t in tracked], since=since)
    highest: dict[int, dict[str, int]] = {}
    if peaks:
        h = tag_history
        stmt = (
            select(
                h.c.tag_id,
                func.max(h.c.uses).label("uses"),
                func.max(h.c.accounts).label("accounts"),
            )
            .where(h.c.tag_id.in_([t.id for t in tracked]), h.c.day < since)
            .group_by(h.c.tag_id)
        )
        async with db.connect() as conn:
            for row in await conn.execute(stmt):
                highest[row.tag_id] = {"uses": row.uses, "accounts": row.accounts}
    return [
        WatchedDays(
            _tag_subject(tag),
            [
                DayCount(d.day, {"uses": d.uses, "accounts": d.accounts}, d.complete)
                for d in histories[tag.id]
            ],
            highest.get(tag.id, {}),
        )
        for tag in tracked
    ]


async def tag_streaks(db: Database, min_rounds: int) -> list[Streak]:
    """Tracked tags that could not be read in ``min_rounds`` rounds in a row or more.

    A tag's first failure is not stored (only its last one and how many in a row), so a streak
    is told by what stays the same all through it and changes with the next success: the last
    successful read (or, for a tag never read, when it was added).

    Raises:
        StorageError: the database refused.
    """
    return [
        Streak(
            subject=_tag_subject(tag),
            rounds=tag.consecutive_failures,
            since=tag.checked_at or tag.added_at,
            reason=tag.last_error,
            last_read=tag.checked_at,
        )
        for tag in await TagStore(db).tracked()
        if tag.consecutive_failures >= min_rounds
    ]
