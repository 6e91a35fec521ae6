"""Engagement in storage: which accounts have it on, and the statuses their timelines showed.

One row per status seen, with the counts of its latest reading, rather than per-round
aggregates: a period's figures (any period, days or weeks, posts of the period) are then
computed later and exactly from the statuses posted in it, whatever rounds read them; a
status read in several rounds is stored once (its counts rewritten while it is read, then
kept); self-replies can be told from replies received; the best posts can be named. What it
does not keep is *when* an interaction happened: a status's counts are its last reading's,
attributed to the period it was posted in (domain/engagement.py). Per-round aggregates
would have counted a post once per round it was read, or fixed its counts at its first
reading, hours after posting.

A reading covers ``[covered_since, read_at]``: every status posted then was seen. A stored
status in that range that the reading did not find is marked gone (deleted, or no longer
public) and left out of the figures; found again, it is back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime  # noqa: TC003 - dataclass fields are resolved at runtime
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from fedimeter.domain.models import AccountState
from fedimeter.storage.database import insert_ignore
from fedimeter.storage.records import AccountRecord  # noqa: TC001 - dataclass field
from fedimeter.storage.repository import _ACCOUNT_COLUMNS, _account
from fedimeter.storage.tables import (
    account_samples,
    accounts,
    engagement_accounts,
    engagement_statuses,
    instances,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy import Row

    from fedimeter.domain.engagement import SeenStatus
    from fedimeter.fediverse.statuses import StatusesRead
    from fedimeter.storage.database import Database

__all__ = ["EngagementAccount", "EngagementStore", "FollowerPoint", "StatusRecord"]


@dataclass(frozen=True, slots=True)
class EngagementAccount:
    """An account with engagement on (or once on), and its readings."""

    account: AccountRecord
    #: Since when its timeline is read each round; None while turned off.
    enabled_at: datetime | None
    #: The last reading that answered.
    read_at: datetime | None
    #: Every status posted from then on was seen (None before the first reading).
    covered_since: datetime | None
    last_requests: int
    last_paging_requests: int
    last_statuses: int
    last_error: str | None
    last_error_code: str | None
    last_error_at: datetime | None
    consecutive_failures: int

    @property
    def enabled(self) -> bool:
        """Whether its timeline is read each round."""
        return self.enabled_at is not None

    def reached_since(self, since: datetime) -> bool:
        """Whether it was read, or failed to be, at or after ``since``."""
        return any(t is not None and t >= since for t in (self.read_at, self.last_error_at))


@dataclass(frozen=True, slots=True)
class StatusRecord:
    """A stored status of an account's timeline (``domain.engagement.StatusLike``)."""

    account_id: int
    id: str
    created_at: datetime
    kind: str
    favourites: int
    reblogs: int
    replies: int
    in_reply_to_id: str | None
    visibility: str
    url: str | None
    excerpt: str
    first_seen_at: datetime
    last_seen_at: datetime
    gone_at: datetime | None


@dataclass(frozen=True, slots=True)
class FollowerPoint:
    """An account's followers at one sample (``domain.engagement.FollowerSample``)."""

    taken_at: datetime
    followers: int


_STATE_COLUMNS = tuple(
    column.label(f"engagement_{column.name}")
    for column in engagement_accounts.c
    if column.name != "account_id"
)


def _engagement(row: Row[Any]) -> EngagementAccount:
    m = row._mapping  # noqa: SLF001 - SQLAlchemy's public row mapping
    return EngagementAccount(
        account=_account(row),
        enabled_at=m["engagement_enabled_at"],
        read_at=m["engagement_read_at"],
        covered_since=m["engagement_covered_since"],
        last_requests=m["engagement_last_requests"],
        last_paging_requests=m["engagement_last_paging_requests"],
        last_statuses=m["engagement_last_statuses"],
        last_error=m["engagement_last_error"],
        last_error_code=m["engagement_last_error_code"],
        last_error_at=m["engagement_last_error_at"],
        consecutive_failures=m["engagement_consecutive_failures"],
    )


def _status(row: Row[Any]) -> StatusRecord:
    m = row._mapping  # noqa: SLF001
    return StatusRecord(
        account_id=m["account_id"],
        id=m["status_id"],
        created_at=m["created_at"],
        kind=m["kind"],
        favourites=m["favourites"],
        reblogs=m["reblogs"],
        replies=m["replies"],
        in_reply_to_id=m["in_reply_to_id"],
        visibility=m["visibility"],
        url=m["url"],
        excerpt=m["excerpt"],
        first_seen_at=m["first_seen_at"],
        last_seen_at=m["last_seen_at"],
        gone_at=m["gone_at"],
    )


class EngagementStore:
    """Reads and writes engagement through one ``Database``."""

    def __init__(self, db: Database) -> None:
        """Use ``db`` for every call."""
        self.db = db

    # -- on and off ------------------------------------------------------------------------

    async def enable(self, account_id: int, now: datetime) -> bool:
        """Read the account's timeline from the next round on.

        Turned on again after being off, its coverage starts anew (the statuses kept stay).

        Returns:
            False when it was on already.

        Raises:
            StorageError: the database refused.
        """
        async with self.db.begin() as conn:
            added = await conn.execute(
                insert_ignore(self.db.dialect, engagement_accounts).values(
                    account_id=account_id,
                    enabled_at=now,
                    last_requests=0,
                    last_paging_requests=0,
                    last_statuses=0,
                    consecutive_failures=0,
                )
            )
            if added.rowcount == 1:
                return True
            again = await conn.execute(
                update(engagement_accounts)
                .where(
                    engagement_accounts.c.account_id == account_id,
                    engagement_accounts.c.enabled_at.is_(None),
                )
                .values(
                    enabled_at=now,
                    read_at=None,
                    covered_since=None,
                    last_error=None,
                    last_error_code=None,
                    last_error_at=None,
                    consecutive_failures=0,
                )
            )
            return again.rowcount == 1

    async def disable(self, account_id: int, *, purge: bool = False) -> tuple[bool, int]:
        """Stop reading the account's timeline; keep its statuses unless ``purge``.

        Returns:
            Whether it was on, and how many statuses were deleted.

        Raises:
            StorageError: the database refused.
        """
        async with self.db.begin() as conn:
            was_on = await conn.execute(
                update(engagement_accounts)
                .where(
                    engagement_accounts.c.account_id == account_id,
                    engagement_accounts.c.enabled_at.is_not(None),
                )
                .values(enabled_at=None)
            )
            deleted = 0
            if purge:
                gone = await conn.execute(
                    delete(engagement_statuses).where(
                        engagement_statuses.c.account_id == account_id
                    )
                )
                deleted = int(gone.rowcount or 0)
                await conn.execute(
                    delete(engagement_accounts).where(
                        engagement_accounts.c.account_id == account_id
                    )
                )
            return was_on.rowcount == 1, deleted

    def _select(self) -> Any:  # noqa: ANN401 - a SQLAlchemy select
        return (
            select(*_ACCOUNT_COLUMNS, *_STATE_COLUMNS)
            .join(instances, instances.c.id == accounts.c.instance_id)
            .join(engagement_accounts, engagement_accounts.c.account_id == accounts.c.id)
        )

    async def get(self, account_id: int) -> EngagementAccount | None:
        """The account's engagement state; None when engagement was never on."""
        async with self.db.connect() as conn:
            row = (await conn.execute(self._select().where(accounts.c.id == account_id))).first()
        return None if row is None else _engagement(row)

    async def accounts(
        self, account_ids: Sequence[int] | None = None, *, enabled: bool = True
    ) -> list[EngagementAccount]:
        """Accounts with engagement on (every one ever on, with ``enabled=False``), by handle.

        Only those of ``account_ids`` when given.
        """
        stmt = self._select()
        if enabled:
            stmt = stmt.where(engagement_accounts.c.enabled_at.is_not(None))
        if account_ids is not None:
            stmt = stmt.where(accounts.c.id.in_(list(account_ids)))
        async with self.db.connect() as conn:
            rows = await conn.execute(stmt.order_by(accounts.c.acct_key))
            return [_engagement(row) for row in rows]

    async def due(
        self, since: datetime | None = None, instance_id: int | None = None
    ) -> list[EngagementAccount]:
        """Active accounts with engagement on that were not read (nor failed) since ``since``.

        Only those living on ``instance_id`` when given; by host, then handle.
        """
        stmt = self._select().where(
            engagement_accounts.c.enabled_at.is_not(None),
            accounts.c.state == AccountState.ACTIVE.value,
        )
        if instance_id is not None:
            stmt = stmt.where(accounts.c.instance_id == instance_id)
        async with self.db.connect() as conn:
            rows = await conn.execute(stmt.order_by(instances.c.host, accounts.c.acct_key))
            found = [_engagement(row) for row in rows]
        return [a for a in found if since is None or not a.reached_since(since)]

    async def instances_with_engagement(self) -> set[int]:
        """The hosts (instance ids) of active accounts with engagement on."""
        async with self.db.connect() as conn:
            rows = await conn.execute(
                select(accounts.c.instance_id)
                .join(engagement_accounts, engagement_accounts.c.account_id == accounts.c.id)
                .where(
                    engagement_accounts.c.enabled_at.is_not(None),
                    accounts.c.state == AccountState.ACTIVE.value,
                )
                .distinct()
            )
            return set(rows.scalars())

    # -- readings --------------------------------------------------------------------------

    async def store_read(self, account_id: int, read: StatusesRead, now: datetime) -> int:
        """Store one reading: its statuses, the ones it no longer found, what it cost.

        Returns:
            How many stored statuses it found gone (deleted, or no longer public).

        Raises:
            StorageError: the database refused.
        """
        seen = {status.id for status in read.statuses}
        async with self.db.begin() as conn:
            state = (
                await conn.execute(
                    select(
                        engagement_accounts.c.read_at, engagement_accounts.c.covered_since
                    ).where(engagement_accounts.c.account_id == account_id)
                )
            ).first()
            # A status on two pages (the timeline moved while it was read) is stored once.
            unique = {status.id: status for status in reversed(read.statuses)}
            if unique:
                await conn.execute(
                    self._upsert(),
                    [_status_values(account_id, status, now) for status in unique.values()],
                )
            candidates = await conn.execute(
                select(engagement_statuses.c.status_id).where(
                    engagement_statuses.c.account_id == account_id,
                    engagement_statuses.c.created_at >= read.covered_since,
                    engagement_statuses.c.gone_at.is_(None),
                )
            )
            gone = [status_id for status_id in candidates.scalars() if status_id not in seen]
            for start in range(0, len(gone), 500):
                await conn.execute(
                    update(engagement_statuses)
                    .where(
                        engagement_statuses.c.account_id == account_id,
                        engagement_statuses.c.status_id.in_(gone[start : start + 500]),
                    )
                    .values(gone_at=now)
                )
            # An unbroken chain of readings (this one reaching back to the one before) keeps
            # the coverage's start; a gap starts it again.
            covered = read.covered_since
            if (
                state is not None
                and state.read_at is not None
                and state.covered_since is not None
                and read.covered_since <= state.read_at
            ):
                covered = min(state.covered_since, read.covered_since)
            await conn.execute(
                update(engagement_accounts)
                .where(engagement_accounts.c.account_id == account_id)
                .values(
                    read_at=now,
                    covered_since=covered,
                    last_requests=read.requests,
                    last_paging_requests=read.paging_requests,
                    last_statuses=len(read.statuses),
                    last_error=None,
                    last_error_code=None,
                    last_error_at=None,
                    consecutive_failures=0,
                )
            )
        return len(gone)

    def _upsert(self) -> Any:  # noqa: ANN401 - dialect insert constructs
        """Insert statuses; a status seen before gets this reading's counts and is not gone."""
        dialect = postgresql if self.db.dialect == "postgresql" else sqlite
        stmt = dialect.insert(engagement_statuses)
        return stmt.on_conflict_do_update(
            index_elements=[engagement_statuses.c.account_id, engagement_statuses.c.status_id],
            set_={
                name: stmt.excluded[name]
                for name in (
                    "favourites",
                    "reblogs",
                    "replies",
                    "visibility",
                    "url",
                    "excerpt",
                    "last_seen_at",
                    "gone_at",
                )
            },
        )

    async def record_failure(self, account_id: int, code: str, reason: str, now: datetime) -> None:
        """Note that reading the account's timeline failed, one more time in a row.

        Raises:
            StorageError: the database refused.
        """
        async with self.db.begin() as conn:
            await conn.execute(
                update(engagement_accounts)
                .where(engagement_accounts.c.account_id == account_id)
                .values(
                    last_error=reason,
                    last_error_code=code,
                    last_error_at=now,
                    consecutive_failures=engagement_accounts.c.consecutive_failures + 1,
                )
            )

    # -- reading back ----------------------------------------------------------------------

    async def statuses(
        self,
        account_id: int,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        include_gone: bool = False,
    ) -> list[StatusRecord]:
        """The account's stored statuses posted in ``[since, until)``, oldest first."""
        stmt = select(engagement_statuses).where(engagement_statuses.c.account_id == account_id)
        if since is not None:
            stmt = stmt.where(engagement_statuses.c.created_at >= since)
        if until is not None:
            stmt = stmt.where(engagement_statuses.c.created_at < until)
        if not include_gone:
            stmt = stmt.where(engagement_statuses.c.gone_at.is_(None))
        async with self.db.connect() as conn:
            rows = await conn.execute(
                stmt.order_by(engagement_statuses.c.created_at, engagement_statuses.c.status_id)
            )
            return [_status(row) for row in rows]

    async def count_statuses(self, account_id: int) -> int:
        """How many statuses of the account are stored (gone ones included)."""
        async with self.db.connect() as conn:
            return int(
                (
                    await conn.execute(
                        select(func.count()).where(engagement_statuses.c.account_id == account_id)
                    )
                ).scalar_one()
            )

    async def followers(
        self, account_id: int, since: datetime, until: datetime
    ) -> list[FollowerPoint]:
        """The account's followers at its samples in ``[since, until]``, oldest first.

        With the last sample before ``since`` and the first after ``until``, when there are.
        """
        columns = (account_samples.c.taken_at, account_samples.c.followers)
        mine = account_samples.c.account_id == account_id
        async with self.db.connect() as conn:
            before = (
                await conn.execute(
                    select(*columns)
                    .where(mine, account_samples.c.taken_at < since)
                    .order_by(account_samples.c.taken_at.desc())
                    .limit(1)
                )
            ).all()
            inside = (
                await conn.execute(
                    select(*columns)
                    .where(
                        and_(
                            mine,
                            account_samples.c.taken_at >= since,
                            account_samples.c.taken_at <= until,
                        )
                    )
                    .order_by(account_samples.c.taken_at)
                )
            ).all()
            after = (
                await conn.execute(
                    select(*columns)
                    .where(mine, account_samples.c.taken_at > until)
                    .order_by(account_samples.c.taken_at)
                    .limit(1)
                )
            ).all()
        return [FollowerPoint(row.taken_at, row.followers) for row in (*before, *inside, *after)]


def _status_values(account_id: int, status: SeenStatus, now: datetime) -> dict[str, object]:
    return {
        "account_id": account_id,
        "status_id": status.id,
        "created_at": status.created_at,
        "kind": status.kind,
        "favourites": status.favourites,
        "reblogs": status.reblogs,
        "replies": status.replies,
        "in_reply_to_id": status.in_reply_to_id,
        "visibility": status.visibility,
        "url": status.url,
        "excerpt": status.excerpt,
        "first_seen_at": now,
        "last_seen_at": now,
        "gone_at": None,
    }
