"""Rounds shared by several ``fedimeter worker`` processes, split by host through leases.

A shared round is an ordinary row in ``runs`` (owner ``workers``) plus one ``host_leases`` row
per host with work in it. Workers claim hosts with ``SELECT ... FOR UPDATE SKIP LOCKED`` (two
claimers never wait for each other nor get the same host), hold them while their lease is
ahead and renew them as they go. A worker that dies stops renewing; once its lease expires,
another worker claims the host and measures what was left.

Three rules make that safe:

* **Fencing.** Each claim bumps the row's ``token``. Results are written only in a transaction
  that finds the writer's own token still on the row (``LeaseLost`` otherwise), so a worker
  that lost its host (paused, cut off from the database) cannot store anything after another
  took over, and no account is measured twice in a round.
* **The database's clock.** Expiry is set and compared with ``now()`` on the server, so the
  clocks of the workers' machines do not matter.
* **One host's budget in one worker.** A lease lasts longer than a rate-limit window plus a
  request's deadline, so when a host is taken over every window its dead worker sent requests
  in has ended: the new worker starts from a budget the dead one cannot have spent.

Leases need PostgreSQL (``SKIP LOCKED``, advisory locks); SQLite serves one process.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import and_, exists, func, insert, or_, select, text, update

from fedimeter.domain.models import AccountState
from fedimeter.errors import ConfigError, LeaseLost
from fedimeter.storage.engagement import EngagementAccount, EngagementStore
from fedimeter.storage.records import RunProgress, RunRecord
from fedimeter.storage.repository import _ACCOUNT_COLUMNS, _account, _record
from fedimeter.storage.tables import (
    account_samples,
    accounts,
    engagement_accounts,
    host_leases,
    instance_samples,
    instances,
    run_failures,
    runs,
    tags,
    trend_tags,
)
from fedimeter.storage.tags import TagRecord, TagStore

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from sqlalchemy import ColumnElement, Exists, Update
    from sqlalchemy.ext.asyncio import AsyncConnection

    from fedimeter.storage.records import (
        AccountRecord,
        AccountStateChange,
        NewFailure,
        NewSample,
    )
    from fedimeter.storage.repository import Repository

__all__ = ["WORKERS_OWNER", "HostLease", "LeaseRow", "LeaseStore"]

#: The owner of a round shared by workers (no pid: its liveness is its heartbeat).
WORKERS_OWNER = "workers"
#: Advisory lock key serialising the planning of shared rounds.
_PLAN_LOCK = 0x666D706C


@dataclass(frozen=True, slots=True)
class HostLease:
    """A host of a shared round, held by one worker until ``expires_at`` (database time)."""

    run_id: int
    instance_id: int
    accounts: int
    measure_instance: bool
    holder: str
    token: int
    claims: int
    expires_at: datetime

    @property
    def taken_over(self) -> bool:
        """Whether another worker held this host before (and died or lost it)."""
        return self.claims > 1


@dataclass(frozen=True, slots=True)
class LeaseRow:
    """A host of a shared round as the database shows it (for people and tests)."""

    run_id: int
    instance_id: int
    host: str
    accounts: int
    measure_instance: bool
    holder: str | None
    expires_at: datetime | None
    claims: int
    done_at: datetime | None


class LeaseStore:
    """Plans shared rounds and hands their hosts out to workers (PostgreSQL only)."""

    def __init__(self, repo: Repository) -> None:
        """Work over ``repo``'s database.

        Raises:
            ConfigError: the database is not PostgreSQL.
        """
        if repo.db.dialect != "postgresql":
            raise ConfigError(
                "fedimeter worker needs PostgreSQL (several processes share one round);"
                " with SQLite, `fedimeter serve` or `fedimeter collect` measures everything"
                " in one process"
            )
        self.repo = repo
        self.db = repo.db

    # -- rounds ----------------------------------------------------------------------------

    async def current_round(self) -> RunRecord | None:
        """The shared round under way, if any."""
        async with self.db.connect() as conn:
            return await _current_round(conn)

    async def open_round(
        self,
        now: datetime,
        *,
        is_due: Callable[[datetime | None], bool],
        is_alive: Callable[[RunRecord], bool],
    ) -> RunRecord | None:
        """Join the shared round under way, or plan a new one if ``is_due(newest start)``.

        Planning is serialised between workers (an advisory lock) and done in one transaction
        with the round's row: every host with due accounts, and every tracked instance, gets
        a lease row. A round with nothing to measure is finished at once.

        Returns:
            The round to work on, or None when none runs and none is due.

        Raises:
            RoundInProgress: a round of one process (``collect``, ``serve``) is running.
            StorageError: the database refused.
        """
        async with self.db.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PLAN_LOCK})
            current = await _current_round(conn)
            if current is not None:
                return current
            newest = (await conn.execute(select(func.max(runs.c.started_at)))).scalar()
            if not is_due(newest):
                return None
            run, resumed = await self.repo.open_run_in(conn, now, WORKERS_OWNER, is_alive)
            since = await _chain_start(conn, None if resumed is None else resumed.id)
            planned = await _plan(conn, run.id, since)
            values: dict[str, object] = {"accounts_planned": planned}
            if not await _open_leases(conn, run.id):
                values |= {"status": "finished", "finished_at": now}
            await conn.execute(update(runs).where(runs.c.id == run.id).values(**values))
            return _record(
                RunRecord, (await conn.execute(select(runs).where(runs.c.id == run.id))).one()
            )

    async def touch(self, run_id: int, now: datetime) -> None:
        """Say the shared round still has a live worker (one waiting for leases to expire)."""
        async with self.db.begin() as conn:
            await conn.execute(
                update(runs)
                .where(runs.c.id == run_id, runs.c.status == "running")
                .values(heartbeat_at=now)
            )

    async def hosts(self, run_id: int) -> list[LeaseRow]:
        """The hosts of a shared round, biggest first."""
        stmt = (
            select(host_leases, instances.c.host)
            .join(instances, instances.c.id == host_leases.c.instance_id)
            .where(host_leases.c.run_id == run_id)
            .order_by(host_leases.c.accounts.desc(), host_leases.c.instance_id)
        )
        async with self.db.connect() as conn:
            return [_record(LeaseRow, row) for row in await conn.execute(stmt)]

    # -- leases ----------------------------------------------------------------------------

    async def claim(
        self, run_id: int, holder: str, *, limit: int, lease_seconds: float
    ) -> list[HostLease]:
        """Take up to ``limit`` hosts nobody holds (or whose lease expired), biggest first.

        Rows another transaction has locked (being claimed, or written by their holder) are
        skipped, not waited for.
        """
        if limit <= 0:
            return []
        candidates = (
            select(host_leases.c.instance_id)
            .where(
                host_leases.c.run_id == run_id,
                host_leases.c.done_at.is_(None),
                or_(host_leases.c.holder.is_(None), host_leases.c.expires_at < func.now()),
            )
            .order_by(host_leases.c.accounts.desc(), host_leases.c.instance_id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        async with self.db.begin() as conn:
            ids = list((await conn.execute(candidates)).scalars())
            if not ids:
                return []
            rows = await conn.execute(
                update(host_leases)
                .where(host_leases.c.run_id == run_id, host_leases.c.instance_id.in_(ids))
                .values(
                    holder=holder,
                    expires_at=func.now() + timedelta(seconds=lease_seconds),
                    token=host_leases.c.token + 1,
                    claims=host_leases.c.claims + 1,
                )
                .returning(*_LEASE_COLUMNS)
            )
            leases = [_record(HostLease, row) for row in rows]
        return sorted(leases, key=lambda lease: (-lease.accounts, lease.instance_id))

    async def renew(self, leases: Sequence[HostLease], *, lease_seconds: float) -> set[int]:
        """Extend the leases still held; returns the instance ids of those that were lost."""
        lost: set[int] = set()
        async with self.db.begin() as conn:
            for lease in leases:
                result = await conn.execute(
                    update(host_leases)
                    .where(_held(lease))
                    .values(expires_at=func.now() + timedelta(seconds=lease_seconds))
                )
                if result.rowcount != 1:
                    lost.add(lease.instance_id)
            if leases:
                await conn.execute(
                    update(runs)
                    .where(runs.c.id == leases[0].run_id, runs.c.status == "running")
                    .values(heartbeat_at=func.now())
                )
        return lost

    async def check(self, lease: HostLease) -> None:
        """Raise ``LeaseLost`` unless the lease is still held.

        Raises:
            LeaseLost: another worker took the host over.
        """
        async with self.db.connect() as conn:
            await _fence(conn, lease, lock=False)

    async def due_accounts(self, lease: HostLease) -> list[AccountRecord]:
        """The host's active accounts this round has neither measured nor failed yet."""
        async with self.db.connect() as conn:
            resumes = (
                await conn.execute(select(runs.c.resumes_run_id).where(runs.c.id == lease.run_id))
            ).scalar()
            since = await _chain_start(conn, resumes)
            stmt = (
                select(*_ACCOUNT_COLUMNS)
                .join(instances, instances.c.id == accounts.c.instance_id)
                .where(
                    accounts.c.instance_id == lease.instance_id,
                    accounts.c.state == AccountState.ACTIVE.value,
                    ~_measured_in(lease.run_id, since),
                    ~exists().where(
                        run_failures.c.account_id == accounts.c.id,
                        run_failures.c.run_id == lease.run_id,
                    ),
                )
                .order_by(accounts.c.id)
            )
            return [_account(row) for row in await conn.execute(stmt)]

    async def instance_due(self, lease: HostLease) -> bool:
        """Whether the host's tracked instance still needs measuring in this round."""
        if not lease.measure_instance:
            return False
        async with self.db.connect() as conn:
            measured = await conn.execute(
                select(instance_samples.c.instance_id).where(
                    instance_samples.c.instance_id == lease.instance_id,
                    instance_samples.c.run_id == lease.run_id,
                )
            )
            return measured.first() is None

    async def tag_work(self, lease: HostLease) -> tuple[list[TagRecord], bool]:
        """The host's tags this round has not read yet, and whether its trends are due.

        Tags read, or that failed, since the round (or the rounds it resumes) began are done;
        trends are due when recorded for the host and not stored since then.
        """
        async with self.db.connect() as conn:
            row = (
                await conn.execute(
                    select(runs.c.started_at, runs.c.resumes_run_id).where(
                        runs.c.id == lease.run_id
                    )
                )
            ).one()
            since = await _chain_start(conn, row.resumes_run_id) or row.started_at
            trends = (
                await conn.execute(
                    select(instances.c.id).where(
                        instances.c.id == lease.instance_id,
                        instances.c.trends_tracked_at.is_not(None),
                        ~exists().where(
                            trend_tags.c.instance_id == instances.c.id,
                            trend_tags.c.taken_at >= since,
                        ),
                    )
                )
            ).first()
        host_tags = await TagStore(self.db).tracked_on(lease.instance_id)
        due = [
            tag
            for tag in host_tags
            if not any(
                when is not None and when >= since for when in (tag.checked_at, tag.last_error_at)
            )
        ]
        return due, trends is not None

    async def engagement_work(self, lease: HostLease) -> list[EngagementAccount]:
        """The host's accounts with engagement on whose timeline this round has not read.

        Accounts read, or that failed, since the round (or the rounds it resumes) began are
        done.
        """
        async with self.db.connect() as conn:
            row = (
                await conn.execute(
                    select(runs.c.started_at, runs.c.resumes_run_id).where(
                        runs.c.id == lease.run_id
                    )
                )
            ).one()
            since = await _chain_start(conn, row.resumes_run_id) or row.started_at
        return await EngagementStore(self.db).due(since, lease.instance_id)

    async def commit(
        self,
        lease: HostLease,
        now: datetime,
        delta: RunProgress,
        *,
        samples: Sequence[NewSample] = (),
        failures: Sequence[NewFailure] = (),
        state_changes: Sequence[AccountStateChange] = (),
    ) -> None:
        """Store results of a held host, adding ``delta`` to the round's totals.

        Raises:
            LeaseLost: the host was taken over; nothing is stored.
            StorageError: the database refused; nothing is stored.
        """
        async with self.db.begin() as conn:
            await _fence(conn, lease, lock=True)
            await self.repo.write_results_in(
                conn,
                lease.run_id,
                samples=samples,
                failures=failures,
                state_changes=state_changes,
            )
            await conn.execute(_add_progress(lease.run_id, now, delta))

    async def add_progress(self, run_id: int, now: datetime, delta: RunProgress) -> None:
        """Add request figures that no host's commit carried (sent while finishing)."""
        async with self.db.begin() as conn:
            await conn.execute(_add_progress(run_id, now, delta))

    async def finish(self, lease: HostLease, now: datetime) -> RunRecord | None:
        """Mark a held host done; the last host done finishes the round.

        Returns:
            The finished round when this was its last host, else None.

        Raises:
            LeaseLost: the host was taken over.
        """
        async with self.db.begin() as conn:
            # Lock the round first: two workers finishing their last hosts at once must not
            # each see the other's host as still open.
            await conn.execute(select(runs.c.id).where(runs.c.id == lease.run_id).with_for_update())
            result = await conn.execute(
                update(host_leases).where(_held(lease)).values(done_at=func.now(), expires_at=None)
            )
            if result.rowcount != 1:
                raise LeaseLost(_lost_message(lease))
            if await _open_leases(conn, lease.run_id):
                return None
            await conn.execute(
                update(runs)
                .where(runs.c.id == lease.run_id, runs.c.status == "running")
                .values(status="finished", finished_at=now, heartbeat_at=now)
            )
            row = (await conn.execute(select(runs).where(runs.c.id == lease.run_id))).one()
            return _record(RunRecord, row)


_LEASE_COLUMNS = (
    host_leases.c.run_id,
    host_leases.c.instance_id,
    host_leases.c.accounts,
    host_leases.c.measure_instance,
    host_leases.c.holder,
    host_leases.c.token,
    host_leases.c.claims,
    host_leases.c.expires_at,
)


def _held(lease: HostLease) -> ColumnElement[bool]:
    """The lease's row, while ``lease`` still holds it and it is open."""
    return and_(
        host_leases.c.run_id == lease.run_id,
        host_leases.c.instance_id == lease.instance_id,
        host_leases.c.holder == lease.holder,
        host_leases.c.token == lease.token,
        host_leases.c.done_at.is_(None),
    )


async def _fence(conn: AsyncConnection, lease: HostLease, *, lock: bool) -> None:
    """Raise ``LeaseLost`` unless ``lease`` holds its row (locked for the transaction if asked)."""
    stmt = select(host_leases.c.token).where(_held(lease))
    if lock:
        stmt = stmt.with_for_update()
    if (await conn.execute(stmt)).first() is None:
        raise LeaseLost(_lost_message(lease))


def _lost_message(lease: HostLease) -> str:
    return (
        f"lost host {lease.instance_id} of round {lease.run_id}: its lease expired and"
        " another worker took it over"
    )


def _add_progress(run_id: int, now: datetime, delta: RunProgress) -> Update:
    c = runs.c
    return (
        update(runs)
        .where(c.id == run_id)
        .values(
            heartbeat_at=now,
            accounts_measured=c.accounts_measured + delta.accounts_measured,
            accounts_failed=c.accounts_failed + delta.accounts_failed,
            requests=c.requests + delta.requests,
            rate_limited=c.rate_limited + delta.rate_limited,
            rate_limit_wait_seconds=c.rate_limit_wait_seconds + delta.rate_limit_wait_seconds,
            retries=c.retries + delta.retries,
        )
    )


def _measured_in(run_id: int, since: datetime | None) -> Exists:
    """Whether the account has a sample from round ``run_id`` (or since ``since``)."""
    taken: ColumnElement[bool] = account_samples.c.run_id == run_id
    if since is not None:
        taken = or_(taken, account_samples.c.taken_at >= since)
    return exists().where(account_samples.c.account_id == accounts.c.id, taken)


async def _current_round(conn: AsyncConnection) -> RunRecord | None:
    row = (
        await conn.execute(
            select(runs)
            .where(runs.c.status == "running", runs.c.owner == WORKERS_OWNER)
            .order_by(runs.c.id.desc())
            .limit(1)
        )
    ).first()
    return None if row is None else _record(RunRecord, row)


async def _chain_start(conn: AsyncConnection, run_id: int | None) -> datetime | None:
    """When the chain of interrupted rounds ending with round ``run_id`` began (collect.py).

    What any of them measured counts for the round that resumes them. None for no round.
    """
    start: datetime | None = None
    while run_id is not None:
        row = (
            await conn.execute(
                select(runs.c.started_at, runs.c.resumes_run_id).where(runs.c.id == run_id)
            )
        ).first()
        if row is None:
            break
        start, run_id = row.started_at, row.resumes_run_id
    return start


async def _plan(conn: AsyncConnection, run_id: int, since: datetime | None) -> int:
    """One lease row per host with due accounts or a tracked instance; returns the accounts."""
    due = (
        select(accounts.c.instance_id, func.count().label("n"))
        .where(accounts.c.state == AccountState.ACTIVE.value)
        .group_by(accounts.c.instance_id)
    )
    if since is not None:
        due = due.where(
            ~exists().where(
                account_samples.c.account_id == accounts.c.id,
                account_samples.c.taken_at >= since,
            )
        )
    counts: dict[int, int] = {row.instance_id: row.n for row in await conn.execute(due)}
    tracked = select(instances.c.id).where(instances.c.tracked_at.is_not(None))
    if since is not None:
        tracked = tracked.where(
            ~exists().where(
                instance_samples.c.instance_id == instances.c.id,
                instance_samples.c.taken_at >= since,
            )
        )
    measured_too = set((await conn.execute(tracked)).scalars())
    # Hosts with tags or trending tags to read get a lease too (tag_work says what is left).
    tagged = select(tags.c.instance_id).union(
        select(instances.c.id).where(instances.c.trends_tracked_at.is_not(None))
    )
    with_tags = set((await conn.execute(tagged)).scalars())
    # So do hosts of accounts with engagement on (engagement_work says what is left).
    with_tags |= set(
        (
            await conn.execute(
                select(accounts.c.instance_id)
                .join(engagement_accounts, engagement_accounts.c.account_id == accounts.c.id)
                .where(
                    engagement_accounts.c.enabled_at.is_not(None),
                    accounts.c.state == AccountState.ACTIVE.value,
                )
            )
        ).scalars()
    )
    rows = [
        {
            "run_id": run_id,
            "instance_id": instance_id,
            "accounts": counts.get(instance_id, 0),
            "measure_instance": instance_id in measured_too,
            "token": 0,
            "claims": 0,
        }
        for instance_id in sorted(set(counts) | measured_too | with_tags)
    ]
    if rows:
        await conn.execute(insert(host_leases), rows)
    return sum(counts.values())


async def _open_leases(conn: AsyncConnection, run_id: int) -> int:
    return int(
        (
            await conn.execute(
                select(func.count()).where(
                    host_leases.c.run_id == run_id, host_leases.c.done_at.is_(None)
                )
            )
        ).scalar_one()
    )
