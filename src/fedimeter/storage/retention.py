"""Thinning old samples to one a day or a week, in set-based statements on both backends.

A sample is removed when it is older than the cutoff, not at the exact start of its period, and
a later sample of the same account or instance exists in the same period (for instances: also
one that gave each count the sample gave, and one taken while up, if it was up). The samples
that prove the others redundant are never removed themselves, so the statement removes the
same rows however it is evaluated, a second run removes nothing, and a dry run counts exactly
what a real one removes. See domain/retention.py for why these are the samples kept.

Cost: each statement names up to ``CHUNK`` owners (``account_id IN (...)``) and a range of
``taken_at``, so both backends walk the primary key ``(owner, taken_at)`` from the range's
start for each owner, and check each candidate with one more seek on the same key; no other
index is needed. Chunks commit one by one, so on SQLite a pass over years of samples never
holds the write lock for long. Where the dialects differ (the start and end of a sample's UTC
day or week, computed from the stored value) the difference stays inside this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    delete,
    func,
    literal_column,
    or_,
    select,
    update,
)

from fedimeter.storage.database import insert_ignore
from fedimeter.storage.tables import (
    account_samples,
    accounts,
    instance_samples,
    instances,
    retention_marks,
)

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy import Column

    from fedimeter.domain.retention import Period
    from fedimeter.storage.database import Database

__all__ = ["CHUNK", "SAMPLE_TABLES", "RetentionStore", "SampleTable"]

SampleTable = Literal["account_samples", "instance_samples"]

#: The tables thinned, in the order a pass treats them.
SAMPLE_TABLES: tuple[SampleTable, ...] = ("account_samples", "instance_samples")

#: Owners (accounts or instances) per statement and transaction.
CHUNK = 500

#: SQLite keeps ``UTCDateTime`` as naive UTC text in this shape (SQLAlchemy's DATETIME storage
#: format, microseconds always written), which sorts as the moments do; a period's bounds are
#: built as text of the same shape from the first ten characters, the date.
_SQLITE_MIDNIGHT = " 00:00:00.000000"


@dataclass(frozen=True, slots=True)
class _Samples:
    """What thinning needs to know about one sample table."""

    table: Table
    #: The column naming the account or instance, and where its ids are listed.
    owner: Column[Any]
    owners: Column[Any]
    #: Columns whose newest non-null value of a period is read by someone (instance reports
    #: read the newest sample that gave a count), and a boolean whose newest true is.
    figures: tuple[str, ...]
    flag: str | None


_TABLES: dict[SampleTable, _Samples] = {
    "account_samples": _Samples(
        account_samples, account_samples.c.account_id, accounts.c.id, figures=(), flag=None
    ),
    "instance_samples": _Samples(
        instance_samples,
        instance_samples.c.instance_id,
        instances.c.id,
        figures=("users", "statuses", "domains", "peers", "active_month", "active_halfyear"),
        flag="up",
    ),
}


def _bounds(
    dialect: str, taken_at: ColumnElement[Any], period: Period
) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """SQL for the start and the end of the UTC day or ISO week ``taken_at`` falls in."""
    if dialect == "postgresql":
        utc = func.timezone(literal_column("'UTC'"), taken_at)
        start = func.date_trunc(literal_column(f"'{period}'"), utc)
        end = start + literal_column(f"INTERVAL '1 {period}'")
        return (
            func.timezone(literal_column("'UTC'"), start),
            func.timezone(literal_column("'UTC'"), end),
        )
    day = func.substr(taken_at, 1, 10)
    if period == "week":
        # 'weekday 0' moves to the next Sunday unless the day is one; six days back is Monday.
        start_day = func.date(day, literal_column("'weekday 0'"), literal_column("'-6 days'"))
        end_day = func.date(day, literal_column("'weekday 0'"), literal_column("'+1 day'"))
    else:
        start_day = func.date(day)
        end_day = func.date(day, literal_column("'+1 day'"))
    midnight: ColumnElement[str] = literal_column(f"'{_SQLITE_MIDNIGHT}'")
    return start_day.concat(midnight), end_day.concat(midnight)


def _removable(
    dialect: str,
    samples: _Samples,
    period: Period,
    owners: list[int],
    *,
    since: datetime | None,
    before: datetime,
) -> ColumnElement[bool]:
    """The condition on ``samples.table`` that picks the samples thinning removes."""
    table = samples.table
    taken_at = table.c.taken_at
    start, end = _bounds(dialect, taken_at, period)
    later = table.alias("later")

    def later_one(*extra: ColumnElement[bool]) -> ColumnElement[bool]:
        # A later sample of the same owner in the same period: a seek on the primary key
        # (which covers the query when nothing else is asked of the row). A scalar subquery
        # rather than EXISTS: PostgreSQL turns EXISTS into a semi-join and, with a chunk's
        # many candidates, hashed the whole table for it: 8 s for a chunk this does in 1 s.
        return (
            select(later.c.taken_at)
            .where(
                later.c[samples.owner.key] == samples.owner,
                later.c.taken_at > taken_at,
                later.c.taken_at < end,
                *extra,
            )
            .limit(1)
            .scalar_subquery()
            .is_not(None)
        )

    conditions = [samples.owner.in_(owners), taken_at < before]
    if since is not None:
        conditions.append(taken_at >= since)
    conditions += [taken_at != start, later_one()]
    conditions.extend(
        or_(table.c[name].is_(None), later_one(later.c[name].is_not(None)))
        for name in samples.figures
    )
    if samples.flag is not None:
        flag = samples.flag
        conditions.append(or_(table.c[flag].is_not(True), later_one(later.c[flag].is_(True))))
    return and_(*conditions)


class RetentionStore:
    """Thins sample tables and keeps the marks of how far they are thinned."""

    def __init__(self, db: Database) -> None:
        """Use ``db`` for every call."""
        self.db = db

    async def owners(self, table: SampleTable) -> list[int]:
        """The ids of every account (or instance) that may have samples in ``table``.

        Raises:
            StorageError: the database refused.
        """
        column = _TABLES[table].owners
        async with self.db.connect() as conn:
            return list((await conn.scalars(select(column).order_by(column))).all())

    async def thin(
        self,
        table: SampleTable,
        period: Period,
        *,
        before: datetime,
        since: datetime | None = None,
        dry_run: bool = False,
    ) -> int:
        """Remove (or with ``dry_run`` count) what thinning to ``period`` removes from ``table``.

        Looks at the samples taken in ``[since, before)``; ``before`` and ``since`` must be
        starts of ``period`` (whole periods only). Returns how many rows went (or would go).

        Raises:
            StorageError: the database refused.
        """
        samples = _TABLES[table]
        ids = await self.owners(table)
        total = 0
        for first in range(0, len(ids), CHUNK):
            chunk = ids[first : first + CHUNK]
            where = _removable(self.db.dialect, samples, period, chunk, since=since, before=before)
            if dry_run:
                async with self.db.connect() as conn:
                    count = select(func.count()).select_from(samples.table).where(where)
                    total += int((await conn.execute(count)).scalar_one())
            else:
                async with self.db.begin() as conn:
                    done = await conn.execute(delete(samples.table).where(where))
                    total += int(done.rowcount or 0)
        return total

    async def marks(self) -> dict[tuple[SampleTable, Period], datetime]:
        """How far each table is thinned to each period: every sample before is thinned.

        Raises:
            StorageError: the database refused.
        """
        async with self.db.connect() as conn:
            rows = await conn.execute(select(retention_marks))
            return {(r.sample_table, r.period): r.thinned_before for r in rows}

    async def advance_mark(
        self, table: SampleTable, period: Period, thinned_before: datetime, now: datetime
    ) -> None:
        """Record that ``table`` is thinned to ``period`` before ``thinned_before``.

        A mark only moves forward: a later, shorter pass never makes it forget more.

        Raises:
            StorageError: the database refused.
        """
        async with self.db.begin() as conn:
            await conn.execute(
                insert_ignore(self.db.dialect, retention_marks).values(
                    sample_table=table,
                    period=period,
                    thinned_before=thinned_before,
                    updated_at=now,
                )
            )
            await conn.execute(
                update(retention_marks)
                .where(
                    retention_marks.c.sample_table == table,
                    retention_marks.c.period == period,
                    retention_marks.c.thinned_before < thinned_before,
                )
                .values(thinned_before=thinned_before, updated_at=now)
            )
