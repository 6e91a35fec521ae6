"""Hashtags tracked on instances, their daily history, and instances' trending tags.

A tag is tracked *on* an instance (one row per tag and instance). Its history holds one row
per UTC day, however many answers covered that day: the server's newest day is stored
incomplete and rewritten by every later answer that has it, until an answer with a later day
shows it over; a day stored complete is final (a server that lost its counters would
otherwise overwrite a real history with zeros). Days no answer covered stay absent — never
zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime  # noqa: TC003 - dataclass fields
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, case, delete, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from fedimeter.domain.tags import TagDay, TagName, TrendingTag, tag_key
from fedimeter.errors import AlreadyTracked, NotTracked
from fedimeter.storage.database import insert_ignore
from fedimeter.storage.records import address_from_base_url
from fedimeter.storage.tables import (
    accounts,
    instances,
    tag_history,
    tags,
    trend_tags,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy import Row

    from fedimeter.domain.models import InstanceAddress
    from fedimeter.domain.tags import TagReading
    from fedimeter.storage.database import Database

__all__ = ["TagDayRecord", "TagRecord", "TagStore", "TrendRecord"]


@dataclass(frozen=True, slots=True)
class TagRecord:
    """A hashtag tracked on one instance."""

    id: int
    instance_id: int
    host: str
    base_url: str
    #: As the server spells it (as typed until it answered).
    name: str
    key: str
    url: str | None
    added_at: datetime
    checked_at: datetime | None
    last_error: str | None
    last_error_code: str | None
    last_error_at: datetime | None
    consecutive_failures: int

    @property
    def address(self) -> InstanceAddress:
        """Where to ask about it."""
        return address_from_base_url(self.base_url)

    @property
    def tag(self) -> TagName:
        """Its name and key."""
        return TagName(self.name, self.key)

    @property
    def label(self) -> str:
        """``#name on host``."""
        return f"#{self.name} on {self.host}"

    def reached_since(self, since: datetime) -> bool:
        """Whether it was read, or failed to be, at or after ``since``."""
        return any(t is not None and t >= since for t in (self.checked_at, self.last_error_at))


@dataclass(frozen=True, slots=True)
class TagDayRecord:
    """One stored day of a tag's history."""

    tag_id: int
    day: date
    uses: int
    accounts: int
    complete: bool
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class TrendRecord:
    """One tag of an instance's trending list, as one round saw it."""

    instance_id: int
    taken_at: datetime
    rank: int
    name: str
    day: date
    uses: int
    accounts: int


def _tag(row: Row[Any]) -> TagRecord:
    m = row._mapping  # noqa: SLF001 - SQLAlchemy's public row mapping
    return TagRecord(
        id=m["id"],
        instance_id=m["instance_id"],
        host=m["host"],
        base_url=m["base_url"],
        name=m["name"],
        key=m["name_key"],
        url=m["url"],
        added_at=m["added_at"],
        checked_at=m["checked_at"],
        last_error=m["last_error"],
        last_error_code=m["last_error_code"],
        last_error_at=m["last_error_at"],
        consecutive_failures=m["consecutive_failures"],
    )


def _day(row: Row[Any]) -> TagDayRecord:
    m = row._mapping  # noqa: SLF001
    return TagDayRecord(
        tag_id=m["tag_id"],
        day=m["day"],
        uses=m["uses"],
        accounts=m["accounts"],
        complete=m["complete"],
        updated_at=m["updated_at"],
    )


def _trend(row: Row[Any]) -> TrendRecord:
    m = row._mapping  # noqa: SLF001
    return TrendRecord(
        instance_id=m["instance_id"],
        taken_at=m["taken_at"],
        rank=m["rank"],
        name=m["name"],
        day=m["day"],
        uses=m["uses"],
        accounts=m["accounts"],
    )


_TAG_COLUMNS = (*tags.c, instances.c.host, instances.c.base_url)


class TagStore:
    """Reads and writes tracked hashtags and trending tags through one ``Database``."""

    def __init__(self, db: Database) -> None:
        """Use ``db`` for every call."""
        self.db = db

    # -- tracking --------------------------------------------------------------------------

    async def track(self, address: InstanceAddress, tag: TagName, now: datetime) -> TagRecord:
        """Track ``tag`` on the instance at ``address`` (its row is created when new).

        Raises:
            AlreadyTracked: the tag is tracked on that instance already.
            StorageError: the database refused.
        """
        async with self.db.begin() as conn:
            await conn.execute(
                insert_ignore(self.db.dialect, instances).values(
                    host=address.authority, base_url=address.base_url, added_at=now
                )
            )
            instance_id = (
                await conn.execute(
                    select(instances.c.id).where(instances.c.host == address.authority)
                )
            ).scalar_one()
            added = await conn.execute(
                insert_ignore(self.db.dialect, tags).values(
                    instance_id=instance_id,
                    name_key=tag.key,
                    name=tag.name,
                    added_at=now,
                    consecutive_failures=0,
                )
            )
            if added.rowcount != 1:
                raise AlreadyTracked(f"{tag} is already tracked on {address.authority}")
            row = (
                await conn.execute(
                    self._select().where(
                        tags.c.instance_id == instance_id, tags.c.name_key == tag.key
                    )
                )
            ).one()
        return _tag(row)

    def _select(self) -> Any:  # noqa: ANN401 - a SQLAlchemy select
        return select(*_TAG_COLUMNS).join(instances, instances.c.id == tags.c.instance_id)

    async def find(self, key: str, host: str | None = None) -> list[TagRecord]:
        """The tag with ``key`` on ``host`` (an authority), or on every instance when None."""
        stmt = self._select().where(tags.c.name_key == key)
        if host is not None:
            stmt = stmt.where(instances.c.host == host.lower())
        async with self.db.connect() as conn:
            rows = await conn.execute(stmt.order_by(instances.c.host))
            return [_tag(row) for row in rows]

    async def get(self, tag_id: int) -> TagRecord:
        """The tag with this id.

        Raises:
            NotTracked: no such tag.
        """
        async with self.db.connect() as conn:
            row = (await conn.execute(self._select().where(tags.c.id == tag_id))).first()
        if row is None:
            raise NotTracked(f"tag {tag_id} is not tracked")
        return _tag(row)

    async def tracked(self, host: str | None = None) -> list[TagRecord]:
        """Every tracked tag (on ``host`` only, when given), by name then host."""
        stmt = self._select()
        if host is not None:
            stmt = stmt.where(instances.c.host == host.lower())
        async with self.db.connect() as conn:
            rows = await conn.execute(stmt.order_by(tags.c.name_key, instances.c.host))
            return [_tag(row) for row in rows]

    async def tracked_on(self, instance_id: int) -> list[TagRecord]:
        """The tags tracked on one instance, by name."""
        stmt = self._select().where(tags.c.instance_id == instance_id)
        async with self.db.connect() as conn:
            rows = await conn.execute(stmt.order_by(tags.c.name_key))
            return [_tag(row) for row in rows]

    async def untrack(self, tag_id: int) -> int:
        """Stop tracking a tag and delete its history; returns how many days were deleted.

        The instance row goes too when nothing else keeps it (no account lives there, it is
        not tracked for itself, no other tag or trend list is recorded on it).

        Raises:
            NotTracked: no such tag.
            StorageError: the database refused.
        """
        async with self.db.begin() as conn:
            instance_id = (
                await conn.execute(select(tags.c.instance_id).where(tags.c.id == tag_id))
            ).scalar_one_or_none()
            if instance_id is None:
                raise NotTracked(f"tag {tag_id} is not tracked")
            days = await conn.execute(delete(tag_history).where(tag_history.c.tag_id == tag_id))
            await conn.execute(delete(tags).where(tags.c.id == tag_id))
            await conn.execute(
                delete(instances).where(
                    instances.c.id == instance_id,
                    instances.c.tracked_at.is_(None),
                    instances.c.trends_tracked_at.is_(None),
                    ~exists().where(accounts.c.instance_id == instances.c.id),
                    ~exists().where(tags.c.instance_id == instances.c.id),
                    ~exists().where(trend_tags.c.instance_id == instances.c.id),
                )
            )
            return int(days.rowcount or 0)

    # -- history ---------------------------------------------------------------------------

    async def store(
        self, tag_id: int, reading: TagReading, now: datetime, run_id: int | None = None
    ) -> int:
        """Store what the server said about the tag: its days, name and URL; clear its failures.

        Returns:
            How many days were added or rewritten (days stored complete are never rewritten).

        Raises:
            StorageError: the database refused.
        """
        async with self.db.begin() as conn:
            stored = {
                row.day: (row.uses, row.accounts, row.complete)
                for row in await conn.execute(
                    select(tag_history).where(
                        tag_history.c.tag_id == tag_id,
                        tag_history.c.day.in_([day.day for day in reading.days]),
                    )
                )
            }
            changed = [
                day
                for day in reading.days
                if day.day not in stored
                or (
                    not stored[day.day][2]
                    and stored[day.day] != (day.uses, day.accounts, day.complete)
                )
            ]
            if changed:
                await conn.execute(
                    self._upsert_days(), [_day_values(tag_id, day, now, run_id) for day in changed]
                )
            # The server's spelling, but only of this tag: a name whose key differs (another
            # tag, or markup) is a server's nonsense and keeps the name known so far.
            named = tags.c.name_key == tag_key(reading.name)
            await conn.execute(
                update(tags)
                .where(tags.c.id == tag_id)
                .values(
                    name=case((named, reading.name), else_=tags.c.name),
                    url=func.coalesce(reading.url, tags.c.url),
                    checked_at=now,
                    last_error=None,
                    last_error_code=None,
                    last_error_at=None,
                    consecutive_failures=0,
                )
            )
        return len(changed)

    def _upsert_days(self) -> Any:  # noqa: ANN401 - dialect insert constructs
        """Insert days; rewrite a stored day only while it is not complete."""
        dialect = postgresql if self.db.dialect == "postgresql" else sqlite
        stmt = dialect.insert(tag_history)
        return stmt.on_conflict_do_update(
            index_elements=[tag_history.c.tag_id, tag_history.c.day],
            set_={
                "uses": stmt.excluded.uses,
                "accounts": stmt.excluded.accounts,
                "complete": stmt.excluded.complete,
                "updated_at": stmt.excluded.updated_at,
                "run_id": stmt.excluded.run_id,
            },
            where=tag_history.c.complete.is_(False),
        )

    async def record_failure(self, tag_id: int, code: str, reason: str, now: datetime) -> None:
        """Note that asking about the tag failed, one more time in a row.

        Raises:
            StorageError: the database refused.
        """
        async with self.db.begin() as conn:
            await conn.execute(
                update(tags)
                .where(tags.c.id == tag_id)
                .values(
                    last_error=reason,
                    last_error_code=code,
                    last_error_at=now,
                    consecutive_failures=tags.c.consecutive_failures + 1,
                )
            )

    async def history(
        self, tag_id: int, since: date | None = None, until: date | None = None
    ) -> list[TagDayRecord]:
        """The tag's stored days in ``[since, until]``, oldest first."""
        stmt = select(tag_history).where(tag_history.c.tag_id == tag_id)
        if since is not None:
            stmt = stmt.where(tag_history.c.day >= since)
        if until is not None:
            stmt = stmt.where(tag_history.c.day <= until)
        async with self.db.connect() as conn:
            rows = await conn.execute(stmt.order_by(tag_history.c.day))
            return [_day(row) for row in rows]

    async def histories(
        self, tag_ids: Sequence[int], since: date | None = None, until: date | None = None
    ) -> dict[int, list[TagDayRecord]]:
        """``history`` of several tags in one query: every id is a key, oldest day first."""
        found: dict[int, list[TagDayRecord]] = {tag_id: [] for tag_id in tag_ids}
        if not found:
            return found
        stmt = select(tag_history).where(tag_history.c.tag_id.in_(list(found)))
        if since is not None:
            stmt = stmt.where(tag_history.c.day >= since)
        if until is not None:
            stmt = stmt.where(tag_history.c.day <= until)
        async with self.db.connect() as conn:
            rows = await conn.execute(stmt.order_by(tag_history.c.tag_id, tag_history.c.day))
            for row in rows:
                found[row.tag_id].append(_day(row))
        return found

    async def latest(self) -> list[tuple[TagRecord, TagDayRecord | None, TagDayRecord | None]]:
        """Every tracked tag with its newest complete day and its day in progress (if newer)."""
        newest = (
            select(
                tag_history.c.tag_id,
                func.max(case((tag_history.c.complete, tag_history.c.day))).label("done"),
                func.max(tag_history.c.day).label("day"),
            )
            .group_by(tag_history.c.tag_id)
            .subquery()
        )
        tracked = await self.tracked()
        async with self.db.connect() as conn:
            rows = await conn.execute(
                select(tag_history).join(
                    newest,
                    and_(
                        tag_history.c.tag_id == newest.c.tag_id,
                        (tag_history.c.day == newest.c.done) | (tag_history.c.day == newest.c.day),
                    ),
                )
            )
            done: dict[int, TagDayRecord] = {}
            going: dict[int, TagDayRecord] = {}
            for row in rows:
                record = _day(row)
                (done if record.complete else going)[record.tag_id] = record
        return [(t, done.get(t.id), going.get(t.id)) for t in tracked]

    # -- trends ----------------------------------------------------------------------------

    async def track_trends(self, address: InstanceAddress, now: datetime) -> tuple[int, bool]:
        """Record the instance's trending tags from the next round on.

        Returns:
            The instance's id, and False when its trends were recorded already.

        Raises:
            StorageError: the database refused.
        """
        async with self.db.begin() as conn:
            await conn.execute(
                insert_ignore(self.db.dialect, instances).values(
                    host=address.authority, base_url=address.base_url, added_at=now
                )
            )
            done = await conn.execute(
                update(instances)
                .where(
                    instances.c.host == address.authority,
                    instances.c.trends_tracked_at.is_(None),
                )
                .values(trends_tracked_at=now)
            )
            instance_id = (
                await conn.execute(
                    select(instances.c.id).where(instances.c.host == address.authority)
                )
            ).scalar_one()
            return instance_id, done.rowcount == 1

    async def untrack_trends(self, host: str) -> bool:
        """Stop recording the instance's trending tags (what was recorded stays).

        Returns:
            False when they were not being recorded.
        """
        async with self.db.begin() as conn:
            done = await conn.execute(
                update(instances)
                .where(instances.c.host == host.lower(), instances.c.trends_tracked_at.is_not(None))
                .values(trends_tracked_at=None)
            )
            return done.rowcount == 1

    async def trend_instances(self) -> list[tuple[int, str, str]]:
        """The instances whose trends are recorded: id, host and base URL, by host."""
        async with self.db.connect() as conn:
            rows = await conn.execute(
                select(instances.c.id, instances.c.host, instances.c.base_url)
                .where(instances.c.trends_tracked_at.is_not(None))
                .order_by(instances.c.host)
            )
            return [(row.id, row.host, row.base_url) for row in rows]

    async def trends_checked(self) -> dict[int, datetime | None]:
        """When the trends of each instance recorded were last read, by instance id."""
        async with self.db.connect() as conn:
            rows = await conn.execute(
                select(instances.c.id, instances.c.trends_checked_at).where(
                    instances.c.trends_tracked_at.is_not(None)
                )
            )
            return {row.id: row.trends_checked_at for row in rows}

    async def store_trends(
        self,
        instance_id: int,
        taken_at: datetime,
        trending: Sequence[TrendingTag],
        run_id: int | None = None,
    ) -> None:
        """Store one reading of the instance's trending tags.

        An empty list stores no list; either way the instance records when it was read
        (``trends_checked_at``), so a server that stopped trending does not show its last
        list as current.

        Raises:
            StorageError: the database refused.
        """
        async with self.db.begin() as conn:
            await conn.execute(
                update(instances)
                .where(instances.c.id == instance_id)
                .values(trends_checked_at=taken_at)
            )
            if not trending:
                return
            await conn.execute(
                insert_ignore(self.db.dialect, trend_tags),
                [
                    {
                        "instance_id": instance_id,
                        "taken_at": taken_at,
                        "rank": tag.rank,
                        "name": tag.name,
                        "day": tag.day,
                        "uses": tag.uses,
                        "accounts": tag.accounts,
                        "run_id": run_id,
                    }
                    for tag in trending
                ],
            )

    async def trends(
        self, instance_id: int, since: datetime | None = None, until: datetime | None = None
    ) -> list[TrendRecord]:
        """The instance's recorded trends in ``[since, until]``, by time then rank."""
        stmt = select(trend_tags).where(trend_tags.c.instance_id == instance_id)
        if since is not None:
            stmt = stmt.where(trend_tags.c.taken_at >= since)
        if until is not None:
            stmt = stmt.where(trend_tags.c.taken_at <= until)
        async with self.db.connect() as conn:
            rows = await conn.execute(stmt.order_by(trend_tags.c.taken_at, trend_tags.c.rank))
            return [_trend(row) for row in rows]

    async def latest_trends(self, instance_id: int) -> list[TrendRecord]:
        """The instance's newest recorded trending list, by rank."""
        newest = (
            select(func.max(trend_tags.c.taken_at))
            .where(trend_tags.c.instance_id == instance_id)
            .scalar_subquery()
        )
        async with self.db.connect() as conn:
            rows = await conn.execute(
                select(trend_tags)
                .where(trend_tags.c.instance_id == instance_id, trend_tags.c.taken_at == newest)
                .order_by(trend_tags.c.rank)
            )
            return [_trend(row) for row in rows]


def _day_values(tag_id: int, day: TagDay, now: datetime, run_id: int | None) -> dict[str, object]:
    return {
        "tag_id": tag_id,
        "day": day.day,
        "uses": day.uses,
        "accounts": day.accounts,
        "complete": day.complete,
        "updated_at": now,
        "run_id": run_id,
    }
