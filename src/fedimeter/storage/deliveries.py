"""The delivery log: which report went where, so none is sent twice and none is half sent.

A delivery is *claimed* before anything is sent. Claiming inserts the row (channel,
destination, report) or takes over an existing one that failed or whose sender stopped
answering; a report delivered already, or being delivered by someone else right now, is not
claimed. The claim is one conditional statement, so two processes never both win it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import and_, or_, select, update

from fedimeter.storage.database import insert_ignore
from fedimeter.storage.tables import deliveries

if TYPE_CHECKING:
    from sqlalchemy import Row

    from fedimeter.storage.database import Database

__all__ = ["STALE_AFTER", "Claim", "DeliveryLog", "DeliveryRecord", "DeliveryStatus"]

DeliveryStatus = Literal["sending", "delivered", "failed"]

#: A delivery marked ``sending`` and not touched for this long lost its sender (a crash):
#: the next attempt takes it over and finishes it.
STALE_AFTER = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One report sent (or being sent) to one place."""

    id: int
    channel: str
    destination_label: str
    report_key: str
    period_start: datetime
    period_end: datetime
    status: DeliveryStatus
    attempts: int
    #: The posts of a thread as planned, when the channel posts threads.
    parts: tuple[str, ...] | None
    parts_sent: int
    #: The ids the server gave the posts sent so far.
    remote_ids: tuple[str, ...]
    url: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class Claim:
    """The outcome of claiming a delivery.

    ``won`` says whether the caller may send now; ``record`` is the row as it stands (when
    not won: delivered already, or being sent by another process).
    """

    won: bool
    record: DeliveryRecord


def _record(row: Row[Any]) -> DeliveryRecord:
    m = row._mapping  # noqa: SLF001 - SQLAlchemy's public row mapping
    parts = json.loads(m["parts"]) if m["parts"] else None
    return DeliveryRecord(
        id=m["id"],
        channel=m["channel"],
        destination_label=m["destination_label"],
        report_key=m["report_key"],
        period_start=m["period_start"],
        period_end=m["period_end"],
        status=m["status"],
        attempts=m["attempts"],
        parts=tuple(parts) if parts is not None else None,
        parts_sent=m["parts_sent"],
        remote_ids=tuple(json.loads(m["remote_ids"])) if m["remote_ids"] else (),
        url=m["url"],
        error=m["error"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        delivered_at=m["delivered_at"],
    )


class DeliveryLog:
    """Reads and writes the ``deliveries`` table through one ``Database``."""

    def __init__(self, db: Database) -> None:
        """Use ``db`` for every call."""
        self.db = db

    async def claim(
        self,
        *,
        channel: str,
        destination: str,
        label: str,
        report_key: str,
        period: tuple[datetime, datetime],
        now: datetime,
    ) -> Claim:
        """Claim the delivery of one report to one place (see the module docstring).

        Raises:
            StorageError: the database refused.
        """
        key = and_(
            deliveries.c.channel == channel,
            deliveries.c.destination == destination,
            deliveries.c.report_key == report_key,
        )
        async with self.db.begin() as conn:
            inserted = await conn.execute(
                insert_ignore(self.db.dialect, deliveries).values(
                    channel=channel,
                    destination=destination,
                    destination_label=label,
                    report_key=report_key,
                    period_start=period[0],
                    period_end=period[1],
                    status="sending",
                    attempts=1,
                    parts_sent=0,
                    created_at=now,
                    updated_at=now,
                )
            )
            won = inserted.rowcount == 1
            if not won:
                taken = await conn.execute(
                    update(deliveries)
                    .where(
                        key,
                        or_(
                            deliveries.c.status == "failed",
                            and_(
                                deliveries.c.status == "sending",
                                deliveries.c.updated_at < now - STALE_AFTER,
                            ),
                        ),
                    )
                    .values(
                        status="sending",
                        attempts=deliveries.c.attempts + 1,
                        updated_at=now,
                        error=None,
                    )
                )
                won = taken.rowcount == 1
            row = (await conn.execute(select(deliveries).where(key))).one()
        return Claim(won=won, record=_record(row))

    async def plan(self, delivery_id: int, parts: list[str], now: datetime) -> None:
        """Store the posts a thread will be (once, before the first is sent)."""
        async with self.db.begin() as conn:
            await conn.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .values(parts=json.dumps(parts, ensure_ascii=False), updated_at=now)
            )

    async def part_sent(
        self, delivery_id: int, remote_ids: list[str], url: str | None, now: datetime
    ) -> None:
        """Record that the posts with ``remote_ids`` went out (the first one's ``url``)."""
        async with self.db.begin() as conn:
            await conn.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .values(
                    parts_sent=len(remote_ids),
                    remote_ids=json.dumps(remote_ids),
                    url=url,
                    updated_at=now,
                )
            )

    async def delivered(self, delivery_id: int, now: datetime, url: str | None = None) -> None:
        """Mark the delivery done."""
        values: dict[str, object] = {
            "status": "delivered",
            "updated_at": now,
            "delivered_at": now,
            "error": None,
        }
        if url is not None:
            values["url"] = url
        async with self.db.begin() as conn:
            await conn.execute(
                update(deliveries).where(deliveries.c.id == delivery_id).values(**values)
            )

    async def failed(self, delivery_id: int, error: str, now: datetime) -> None:
        """Mark the delivery failed with ``error``; the next attempt takes it over."""
        async with self.db.begin() as conn:
            await conn.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .values(status="failed", error=error, updated_at=now)
            )

    async def recent(self, limit: int = 20) -> list[DeliveryRecord]:
        """The newest deliveries first."""
        async with self.db.connect() as conn:
            rows = await conn.execute(
                select(deliveries)
                .order_by(deliveries.c.created_at.desc(), deliveries.c.id.desc())
                .limit(limit)
            )
            return [_record(row) for row in rows]
