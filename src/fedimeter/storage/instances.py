"""Instances tracked for themselves: tracking, their samples, and their weekly activity.

An instance row exists for every server that is home to a tracked account; ``tracked_at`` is
set while the instance itself is tracked (measured every round). A measurement is stored as
one sample, with ``None`` for what no source gave or could be believed, plus one row per week
of activity. A week stored as complete is final: later answers never rewrite it (a server's
old buckets can change as it prunes data); the week in progress is rewritten every round
until it is complete.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime  # noqa: TC003 - dataclass fields
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from fedimeter.domain.instances import InstanceFigures, SourceResult, WeekActivity
from fedimeter.errors import AlreadyTracked, NotTracked
from fedimeter.storage.database import insert_ignore
from fedimeter.storage.records import InstanceRecord
from fedimeter.storage.tables import accounts, instance_activity, instance_samples, instances

if TYPE_CHECKING:
    from sqlalchemy import Row

    from fedimeter.domain.instances import InstanceMeasurement
    from fedimeter.domain.models import InstanceAddress
    from fedimeter.storage.database import Database

__all__ = ["InstanceSampleRecord", "InstanceStore", "WeekRecord"]


@dataclass(frozen=True, slots=True)
class InstanceSampleRecord:
    """One stored measurement of an instance."""

    instance_id: int
    taken_at: datetime
    up: bool
    software: str | None
    version: str | None
    figures: InstanceFigures
    sources: tuple[SourceResult, ...]

    @property
    def users(self) -> int | None:
        """Registered users, if any source gave a believable count."""
        return self.figures.users

    @property
    def statuses(self) -> int | None:
        """Posts, if any source gave a believable count."""
        return self.figures.statuses

    @property
    def active_month(self) -> int | None:
        """Users active in the last 30 days, if known."""
        return self.figures.active_month


@dataclass(frozen=True, slots=True)
class WeekRecord:
    """One stored week of an instance's activity."""

    instance_id: int
    week_start: date
    statuses: int
    logins: int
    registrations: int
    complete: bool


def _instance(row: Row[Any]) -> InstanceRecord:
    m = row._mapping  # noqa: SLF001 - SQLAlchemy's public row mapping
    return InstanceRecord(
        id=m["id"],
        host=m["host"],
        base_url=m["base_url"],
        software=m["software"],
        version=m["version"],
        supports_batch=m["supports_batch"],
        info_checked_at=m["info_checked_at"],
        added_at=m["added_at"],
        tracked_at=m["tracked_at"],
        trends_tracked_at=m["trends_tracked_at"],
        trends_checked_at=m["trends_checked_at"],
    )


def _sample(row: Row[Any]) -> InstanceSampleRecord:
    m = row._mapping  # noqa: SLF001
    return InstanceSampleRecord(
        instance_id=m["instance_id"],
        taken_at=m["taken_at"],
        up=m["up"],
        software=m["software"],
        version=m["version"],
        figures=InstanceFigures(
            users=m["users"],
            statuses=m["statuses"],
            domains=m["domains"],
            peers=m["peers"],
            active_month=m["active_month"],
            active_halfyear=m["active_halfyear"],
        ),
        sources=tuple(SourceResult(**item) for item in json.loads(m["sources"])),
    )


def _week(row: Row[Any]) -> WeekRecord:
    m = row._mapping  # noqa: SLF001
    return WeekRecord(
        instance_id=m["instance_id"],
        week_start=m["week_start"],
        statuses=m["statuses"],
        logins=m["logins"],
        registrations=m["registrations"],
        complete=m["complete"],
    )


class InstanceStore:
    """Reads and writes tracked instances through one ``Database``."""

    def __init__(self, db: Database) -> None:
        """Use ``db`` for every call."""
        self.db = db

    # -- tracking --------------------------------------------------------------------------

    async def track(self, address: InstanceAddress, now: datetime) -> InstanceRecord:
        """Track the instance at ``address`` (its row is created when new).

        Raises:
            AlreadyTracked: it is tracked already.
            StorageError: the database refused.
        """
        async with self.db.begin() as conn:
            await conn.execute(
                insert_ignore(self.db.dialect, instances).values(
                    host=address.authority, base_url=address.base_url, added_at=now
                )
            )
            taken = await conn.execute(
                update(instances)
                .where(instances.c.host == address.authority, instances.c.tracked_at.is_(None))
                .values(tracked_at=now)
            )
            if taken.rowcount != 1:
                raise AlreadyTracked(f"{address.authority} is already tracked")
            row = (
                await conn.execute(select(instances).where(instances.c.host == address.authority))
            ).one()
        return _instance(row)

    async def find(self, host: str) -> InstanceRecord | None:
        """The instance known by ``host`` (an authority, ``host`` or ``host:port``), if any."""
        async with self.db.connect() as conn:
            row = (
                await conn.execute(select(instances).where(instances.c.host == host.lower()))
            ).first()
        return None if row is None else _instance(row)

    async def tracked(self) -> list[InstanceRecord]:
        """Every tracked instance, by host."""
        async with self.db.connect() as conn:
            rows = await conn.execute(
                select(instances)
                .where(instances.c.tracked_at.is_not(None))
                .order_by(instances.c.host)
            )
            return [_instance(row) for row in rows]

    async def untrack(self, instance_id: int, *, purge: bool = False) -> int:
        """Stop tracking an instance; with ``purge``, delete its samples and weeks too.

        The instance row stays while accounts live there. Returns how many samples were
        deleted.

        Raises:
            NotTracked: the instance is not tracked.
            StorageError: the database refused.
        """
        async with self.db.begin() as conn:
            done = await conn.execute(
                update(instances)
                .where(instances.c.id == instance_id, instances.c.tracked_at.is_not(None))
                .values(tracked_at=None)
            )
            if done.rowcount != 1:
                raise NotTracked(f"instance {instance_id} is not tracked")
            if not purge:
                return 0
            deleted = await conn.execute(
                delete(instance_samples).where(instance_samples.c.instance_id == instance_id)
            )
            await conn.execute(
                delete(instance_activity).where(instance_activity.c.instance_id == instance_id)
            )
            homes = exists().where(accounts.c.instance_id == instances.c.id)
            await conn.execute(delete(instances).where(instances.c.id == instance_id, ~homes))
            return int(deleted.rowcount or 0)

    # -- measurements ----------------------------------------------------------------------

    async def store(
        self, instance_id: int, measurement: InstanceMeasurement, run_id: int | None = None
    ) -> None:
        """Store one measurement: its sample and its weeks, in one transaction.

        A sample already stored for the same moment is kept (a resumed round repeats none).

        Raises:
            StorageError: the database refused.
        """
        figures = measurement.figures
        sources = [
            {"source": s.source, "status": s.status, "detail": s.detail}
            for s in measurement.sources
        ]
        async with self.db.begin() as conn:
            await conn.execute(
                insert_ignore(self.db.dialect, instance_samples).values(
                    instance_id=instance_id,
                    taken_at=measurement.taken_at,
                    up=measurement.up,
                    software=measurement.software,
                    version=measurement.version,
                    users=figures.users,
                    statuses=figures.statuses,
                    domains=figures.domains,
                    peers=figures.peers,
                    active_month=figures.active_month,
                    active_halfyear=figures.active_halfyear,
                    sources=json.dumps(sources, ensure_ascii=False),
                    run_id=run_id,
                )
            )
            if measurement.weeks:
                await conn.execute(
                    self._upsert_weeks(),
                    [_week_values(instance_id, w, measurement.taken_at) for w in measurement.weeks],
                )

    def _upsert_weeks(self) -> Any:  # noqa: ANN401 - dialect insert constructs
        """Insert weeks; rewrite a stored week only while it is not complete."""
        table = instance_activity
        dialect = postgresql if self.db.dialect == "postgresql" else sqlite
        stmt = dialect.insert(table)
        return stmt.on_conflict_do_update(
            index_elements=[table.c.instance_id, table.c.week_start],
            set_={
                "statuses": stmt.excluded.statuses,
                "logins": stmt.excluded.logins,
                "registrations": stmt.excluded.registrations,
                "complete": stmt.excluded.complete,
                "updated_at": stmt.excluded.updated_at,
            },
            where=table.c.complete.is_(False),
        )

    async def samples(
        self, instance_id: int, since: datetime | None = None, until: datetime | None = None
    ) -> list[InstanceSampleRecord]:
        """The instance's samples in ``[since, until]``, oldest first."""
        stmt = select(instance_samples).where(instance_samples.c.instance_id == instance_id)
        if since is not None:
            stmt = stmt.where(instance_samples.c.taken_at >= since)
        if until is not None:
            stmt = stmt.where(instance_samples.c.taken_at <= until)
        async with self.db.connect() as conn:
            rows = await conn.execute(stmt.order_by(instance_samples.c.taken_at))
            return [_sample(row) for row in rows]

    async def weeks(
        self, instance_id: int, since: date | None = None, until: date | None = None
    ) -> list[WeekRecord]:
        """The instance's weeks starting in ``[since, until]``, oldest first."""
        stmt = select(instance_activity).where(instance_activity.c.instance_id == instance_id)
        if since is not None:
            stmt = stmt.where(instance_activity.c.week_start >= since)
        if until is not None:
            stmt = stmt.where(instance_activity.c.week_start <= until)
        async with self.db.connect() as conn:
            rows = await conn.execute(stmt.order_by(instance_activity.c.week_start))
            return [_week(row) for row in rows]

    async def latest(
        self,
    ) -> list[tuple[InstanceRecord, InstanceSampleRecord | None, WeekRecord | None]]:
        """Every tracked instance with its newest sample and its newest complete week."""
        newest = (
            select(
                instance_samples.c.instance_id,
                func.max(instance_samples.c.taken_at).label("taken_at"),
            )
            .group_by(instance_samples.c.instance_id)
            .subquery()
        )
        last_week = (
            select(
                instance_activity.c.instance_id,
                func.max(instance_activity.c.week_start).label("week_start"),
            )
            .where(instance_activity.c.complete.is_(True))
            .group_by(instance_activity.c.instance_id)
            .subquery()
        )
        tracked = await self.tracked()
        async with self.db.connect() as conn:
            sample_rows = await conn.execute(
                select(instance_samples).join(
                    newest,
                    and_(
                        instance_samples.c.instance_id == newest.c.instance_id,
                        instance_samples.c.taken_at == newest.c.taken_at,
                    ),
                )
            )
            latest_samples = {row.instance_id: _sample(row) for row in sample_rows}
            week_rows = await conn.execute(
                select(instance_activity).join(
                    last_week,
                    and_(
                        instance_activity.c.instance_id == last_week.c.instance_id,
                        instance_activity.c.week_start == last_week.c.week_start,
                    ),
                )
            )
            latest_weeks = {row.instance_id: _week(row) for row in week_rows}
        return [(i, latest_samples.get(i.id), latest_weeks.get(i.id)) for i in tracked]

    async def previous_figures(self, instance_id: int) -> InstanceFigures | None:
        """The figures of the newest sample that was up: what the next one is judged against."""
        stmt = (
            select(instance_samples)
            .where(instance_samples.c.instance_id == instance_id, instance_samples.c.up.is_(True))
            .order_by(instance_samples.c.taken_at.desc())
            .limit(1)
        )
        async with self.db.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else _sample(row).figures


def _week_values(instance_id: int, week: WeekActivity, now: datetime) -> dict[str, object]:
    return {
        "instance_id": instance_id,
        "week_start": week.week_start,
        "statuses": week.statuses,
        "logins": week.logins,
        "registrations": week.registrations,
        "complete": week.complete,
        "updated_at": now,
    }
