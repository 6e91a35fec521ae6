"""The alert log: every alert that fired, once per occurrence, and its delivery by channel.

Recording an alert is one insert-or-ignore on (rule, subject, occurrence): an occurrence
judged again by a later round, or by a second process at the same moment, adds nothing, so
nothing is sent twice. The channels an alert goes to are fixed when it fires (one row each,
``pending``). A delivery is *claimed* with a token of its own in one conditional update
before anything is sent; one that failed is claimed again by the next round, one whose
sender died after ``STALE_AFTER``, and none of an alert older than ``RETRY_FOR``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import and_, func, insert, or_, select, update

from fedimeter.domain.alerts import Fired, JSONScalar
from fedimeter.storage.database import insert_ignore
from fedimeter.storage.deliveries import STALE_AFTER
from fedimeter.storage.tables import alert_deliveries, alerts

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping, Sequence

    from sqlalchemy import Row

    from fedimeter.domain.alert_rules import AlertRule
    from fedimeter.domain.alerts import Occurrence
    from fedimeter.storage.database import Database

__all__ = [
    "RETRY_FOR",
    "STALE_AFTER",
    "AlertDeliveryRecord",
    "AlertDeliveryStatus",
    "AlertRecord",
    "AlertStore",
]

AlertDeliveryStatus = Literal["pending", "sending", "delivered", "failed"]

#: An alert not delivered this long after it fired is not tried again: it would be old news.
RETRY_FOR = timedelta(days=3)


@dataclass(frozen=True, slots=True)
class AlertDeliveryRecord:
    """One alert's delivery by one channel."""

    channel: str
    status: AlertDeliveryStatus
    attempts: int
    #: Where it went, for people: a host, or the recipients; None before the first attempt.
    destination: str | None
    url: str | None
    error: str | None
    updated_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """An alert that fired."""

    id: int
    rule: str
    kind: str
    #: ``account:user@host``, ``instance:host`` or ``tag:key@host``.
    subject: str
    #: ``@user@host``, the host, or ``#Name on host``, as people read it.
    subject_label: str
    #: The day of a drop or rise, a failing streak's start (for a tag: its last read), a
    #: milestone's value.
    occurrence: str
    text: str
    details: Mapping[str, JSONScalar]
    fired_at: datetime
    #: By channel, in the order mastodon, webhook, email.
    deliveries: tuple[AlertDeliveryRecord, ...] = ()


_CHANNEL_ORDER = {"mastodon": 0, "webhook": 1, "email": 2}


def _alert(row: Row[Any], deliveries: Sequence[AlertDeliveryRecord] = ()) -> AlertRecord:
    m = row._mapping  # noqa: SLF001 - SQLAlchemy's public row mapping
    return AlertRecord(
        id=m["id"],
        rule=m["rule"],
        kind=m["kind"],
        subject=m["subject"],
        subject_label=m["subject_label"],
        occurrence=m["occurrence"],
        text=m["text"],
        details=json.loads(m["details"]),
        fired_at=m["fired_at"],
        deliveries=tuple(sorted(deliveries, key=lambda d: _CHANNEL_ORDER.get(d.channel, 9))),
    )


def _delivery(row: Row[Any]) -> AlertDeliveryRecord:
    m = row._mapping  # noqa: SLF001
    return AlertDeliveryRecord(
        channel=m["channel"],
        status=m["status"],
        attempts=m["attempts"],
        destination=m["destination"],
        url=m["url"],
        error=m["error"],
        updated_at=m["updated_at"],
        delivered_at=m["delivered_at"],
    )


class AlertStore:
    """Reads and writes the ``alerts`` and ``alert_deliveries`` tables through one ``Database``."""

    def __init__(self, db: Database) -> None:
        """Use ``db`` for every call."""
        self.db = db

    async def record(
        self, occurrences: Iterable[Occurrence], channels: Sequence[str], now: datetime
    ) -> list[AlertRecord]:
        """Record each occurrence not recorded yet, pending delivery by ``channels``.

        Returns:
            The alerts recorded now (the others fired before, here or in another process).

        Raises:
            StorageError: the database refused.
        """
        fired: list[AlertRecord] = []
        async with self.db.begin() as conn:
            for occurrence in occurrences:
                rule, subject, key = occurrence.identity
                inserted = await conn.execute(
                    insert_ignore(self.db.dialect, alerts).values(
                        rule=rule,
                        kind=occurrence.kind,
                        subject=subject,
                        subject_label=occurrence.subject.label,
                        occurrence=key,
                        text=occurrence.text,
                        details=json.dumps(dict(occurrence.details), ensure_ascii=False),
                        fired_at=now,
                    )
                )
                if inserted.rowcount != 1:
                    continue
                row = (
                    await conn.execute(
                        select(alerts).where(
                            alerts.c.rule == rule,
                            alerts.c.subject == subject,
                            alerts.c.occurrence == key,
                        )
                    )
                ).one()
                if channels:
                    await conn.execute(
                        insert(alert_deliveries),
                        [
                            {
                                "alert_id": row.id,
                                "channel": channel,
                                "status": "pending",
                                "attempts": 0,
                                "updated_at": now,
                            }
                            for channel in dict.fromkeys(channels)
                        ],
                    )
                fired.append(_alert(row))
        return fired

    async def known(self, occurrences: Collection[Occurrence]) -> set[tuple[str, str, str]]:
        """The identities (rule, subject, occurrence) among ``occurrences`` recorded already."""
        if not occurrences:
            return set()
        rules = {o.rule for o in occurrences}
        subjects = {o.subject.ref for o in occurrences}
        stmt = select(alerts.c.rule, alerts.c.subject, alerts.c.occurrence).where(
            alerts.c.rule.in_(sorted(rules)), alerts.c.subject.in_(sorted(subjects))
        )
        async with self.db.connect() as conn:
            stored = {(r.rule, r.subject, r.occurrence) for r in await conn.execute(stmt)}
        return {o.identity for o in occurrences} & stored

    async def memory(self, rules: Sequence[AlertRule], now: datetime) -> Fired:
        """What the rules fired before, as far as judging them again needs it.

        Milestones told (all of them: a milestone is told once) and the days of drops and
        rises within their longest window.
        """
        kinds = {r.name: r.kind for r in rules}
        if not kinds:
            return Fired()
        longest = max((r.window for r in rules if r.kind in {"drop", "rise"}), default=1)
        recent = now - timedelta(days=longest + 2)
        stmt = select(alerts.c.rule, alerts.c.kind, alerts.c.subject, alerts.c.occurrence).where(
            alerts.c.rule.in_(sorted(kinds)),
            or_(
                alerts.c.kind == "milestone",
                and_(alerts.c.kind.in_(("drop", "rise")), alerts.c.fired_at >= recent),
            ),
        )
        days: dict[tuple[str, str], set[date]] = {}
        milestones: dict[tuple[str, str], int] = {}
        async with self.db.connect() as conn:
            for row in await conn.execute(stmt):
                if kinds.get(row.rule) != row.kind:
                    continue  # a rule renamed onto another's name: its past is not this one's
                key = (row.rule, row.subject)
                try:
                    if row.kind == "milestone":
                        milestones[key] = max(milestones.get(key, 0), int(row.occurrence))
                    else:
                        days.setdefault(key, set()).add(date.fromisoformat(row.occurrence))
                except ValueError:  # pragma: no cover - written by record() only
                    continue
        return Fired(
            days={k: frozenset(v) for k, v in days.items()},
            milestones=milestones,
        )

    # -- delivery --------------------------------------------------------------------------

    async def claim(self, channel: str, now: datetime) -> list[AlertRecord]:
        """Claim every alert waiting for ``channel``: never delivered, failed, or abandoned.

        Returns:
            The claimed alerts, oldest first; another process claims none of them now.

        Raises:
            StorageError: the database refused.
        """
        token = uuid.uuid4().hex
        d = alert_deliveries
        recent = select(alerts.c.id).where(alerts.c.fired_at >= now - RETRY_FOR)
        async with self.db.begin() as conn:
            await conn.execute(
                update(d)
                .where(
                    d.c.channel == channel,
                    d.c.alert_id.in_(recent),
                    or_(
                        d.c.status.in_(("pending", "failed")),
                        and_(d.c.status == "sending", d.c.updated_at < now - STALE_AFTER),
                    ),
                )
                .values(status="sending", attempts=d.c.attempts + 1, claim=token, updated_at=now)
            )
            rows = await conn.execute(
                select(alerts, *[c.label(f"d_{c.name}") for c in d.c])
                .join(d, d.c.alert_id == alerts.c.id)
                .where(d.c.claim == token, d.c.channel == channel)
                .order_by(alerts.c.fired_at, alerts.c.id)
            )
            claimed: list[AlertRecord] = []
            for row in rows:
                m = row._mapping  # noqa: SLF001
                delivery = AlertDeliveryRecord(
                    channel=m["d_channel"],
                    status=m["d_status"],
                    attempts=m["d_attempts"],
                    destination=m["d_destination"],
                    url=m["d_url"],
                    error=m["d_error"],
                    updated_at=m["d_updated_at"],
                    delivered_at=m["d_delivered_at"],
                )
                claimed.append(_alert(row, [delivery]))
        return claimed

    async def delivered(
        self,
        alert_ids: Collection[int],
        channel: str,
        now: datetime,
        *,
        destination: str,
        url: str | None = None,
    ) -> None:
        """Mark the deliveries of ``alert_ids`` by ``channel`` done."""
        await self._finish(
            alert_ids,
            channel,
            status="delivered",
            updated_at=now,
            delivered_at=now,
            destination=destination,
            url=url,
            error=None,
        )

    async def failed(
        self,
        alert_ids: Collection[int],
        channel: str,
        now: datetime,
        *,
        destination: str,
        error: str,
    ) -> None:
        """Mark the deliveries of ``alert_ids`` by ``channel`` failed: the next round retries."""
        await self._finish(
            alert_ids,
            channel,
            status="failed",
            updated_at=now,
            destination=destination,
            error=error,
        )

    async def _finish(self, alert_ids: Collection[int], channel: str, **values: object) -> None:
        if not alert_ids:
            return
        d = alert_deliveries
        async with self.db.begin() as conn:
            await conn.execute(
                update(d)
                .where(d.c.alert_id.in_(list(alert_ids)), d.c.channel == channel)
                .values(claim=None, **values)
            )

    # -- reading ---------------------------------------------------------------------------

    async def recent(self, limit: int = 20, offset: int = 0) -> list[AlertRecord]:
        """Alerts newest first, with their deliveries."""
        async with self.db.connect() as conn:
            rows = list(
                await conn.execute(
                    select(alerts)
                    .order_by(alerts.c.fired_at.desc(), alerts.c.id.desc())
                    .limit(limit)
                    .offset(offset)
                )
            )
            by_alert: dict[int, list[AlertDeliveryRecord]] = {}
            if rows:
                for row in await conn.execute(
                    select(alert_deliveries).where(
                        alert_deliveries.c.alert_id.in_([r.id for r in rows])
                    )
                ):
                    by_alert.setdefault(row.alert_id, []).append(_delivery(row))
        return [_alert(row, by_alert.get(row.id, ())) for row in rows]

    async def count(self) -> int:
        """How many alerts fired, ever."""
        async with self.db.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(alerts))).scalar_one())
