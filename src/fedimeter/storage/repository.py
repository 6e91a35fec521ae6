"""Every read and write fedimeter makes, as async methods over SQLAlchemy Core.

The same statements run on SQLite and PostgreSQL; where the dialects differ (insert-or-ignore,
locks) the difference stays inside this module.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)

from fedimeter.domain.models import AccountState, Handle, ResolvedAccount, ServerInfo
from fedimeter.errors import AlreadyTracked, NotTracked, RoundInProgress
from fedimeter.storage.database import insert_ignore
from fedimeter.storage.records import (
    AccountRecord,
    AccountStateChange,
    FailureRecord,
    InstanceRecord,
    NewFailure,
    NewSample,
    RunProgress,
    RunRecord,
    SampleRecord,
)
from fedimeter.storage.tables import (
    account_samples,
    accounts,
    instances,
    run_failures,
    runs,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Collection, Iterable, Sequence
    from datetime import datetime

    from sqlalchemy import Row
    from sqlalchemy.ext.asyncio import AsyncConnection

    from fedimeter.domain.models import InstanceAddress
    from fedimeter.storage.database import Database

__all__ = ["Repository"]

_ROUND_LOCK = 0x666D7275  # advisory lock key serialising round start on PostgreSQL
#: Rounds that ended before measuring every account: the next round measures only the rest.
_RESUMABLE = frozenset({"interrupted", "failed"})
#: Statements a round runs once a batch, built once: building one (its 50 ids coerced one
#: by one, its cache key) cost more than running it.
_CLEAR_FAILURES = (
    update(accounts)
    .where(
        accounts.c.id.in_(bindparam("ids", expanding=True)),
        or_(accounts.c.consecutive_failures != 0, accounts.c.last_error.is_not(None)),
    )
    .values(last_error=None, last_error_code=None, last_error_at=None, consecutive_failures=0)
)
_PROGRESS_FIELDS = tuple(f.name for f in dataclasses.fields(RunProgress))
_SAVE_PROGRESS = (
    update(runs)
    .where(runs.c.id == bindparam("run_id"))
    .values(
        heartbeat_at=bindparam("heartbeat_at"),
        **{name: bindparam(name) for name in _PROGRESS_FIELDS},
    )
)


def _progress(progress: RunProgress) -> dict[str, object]:
    return {name: getattr(progress, name) for name in _PROGRESS_FIELDS}


_ACCOUNT_COLUMNS = (
    accounts,
    instances.c.host.label("instance_host"),
    instances.c.base_url,
)


def _account(row: Row[Any]) -> AccountRecord:
    m = row._mapping  # noqa: SLF001 - SQLAlchemy's public row mapping
    return AccountRecord(
        id=m["id"],
        handle=Handle(m["username"], m["domain"]),
        instance_id=m["instance_id"],
        instance_host=m["instance_host"],
        base_url=m["base_url"],
        remote_id=m["remote_id"],
        display_name=m["display_name"],
        url=m["url"],
        state=AccountState(m["state"]),
        moved_to=m["moved_to"],
        added_at=m["added_at"],
        state_changed_at=m["state_changed_at"],
        last_error=m["last_error"],
        last_error_code=m["last_error_code"],
        last_error_at=m["last_error_at"],
        consecutive_failures=m["consecutive_failures"],
    )


_T = TypeVar("_T")


def _record(cls: type[_T], row: Row[Any]) -> _T:
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in row._mapping.items() if k in names})  # noqa: SLF001


#: The columns of ``account_samples`` in ``SampleRecord``'s field order, for building records
#: from a row's positions.
_SAMPLE_COLUMNS = tuple(account_samples.c[f.name] for f in dataclasses.fields(SampleRecord))


def _state_values(states: Collection[AccountState] | None) -> list[str]:
    """The stored values of ``states``; every state but untracked when None."""
    if states is None:
        return [s.value for s in AccountState if s is not AccountState.UNTRACKED]
    return [s.value for s in states]


class Repository:
    """Reads and writes through one ``Database``."""

    def __init__(self, db: Database) -> None:
        """Use ``db`` for every call."""
        self.db = db

    # -- instances -------------------------------------------------------------------------

    async def ensure_instance(self, address: InstanceAddress, now: datetime) -> InstanceRecord:
        """The instance row for ``address``, created when new.

        Raises:
            StorageError: the database refused.
        """
        async with self.db.begin() as conn:
            return await self._ensure_instance(conn, address, now)

    async def _ensure_instance(
        self, conn: AsyncConnection, address: InstanceAddress, now: datetime
    ) -> InstanceRecord:
        row = (
            await conn.execute(select(instances).where(instances.c.host == address.authority))
        ).first()
        if row is None:
            await conn.execute(
                insert_ignore(self.db.dialect, instances).values(
                    host=address.authority, base_url=address.base_url, added_at=now
                )
            )
            row = (
                await conn.execute(select(instances).where(instances.c.host == address.authority))
            ).one()
        return _record(InstanceRecord, row)

    async def list_instances(self) -> list[InstanceRecord]:
        """Every known instance, by host."""
        async with self.db.connect() as conn:
            rows = await conn.execute(select(instances).order_by(instances.c.host))
            return [_record(InstanceRecord, row) for row in rows]

    async def get_instance(self, instance_id: int) -> InstanceRecord:
        """One instance by id.

        Raises:
            NotTracked: no such instance.
        """
        async with self.db.connect() as conn:
            row = (
                await conn.execute(select(instances).where(instances.c.id == instance_id))
            ).first()
        if row is None:
            raise NotTracked(f"no instance with id {instance_id}")
        return _record(InstanceRecord, row)

    async def update_instance_info(self, instance_id: int, info: ServerInfo) -> None:
        """Store what a server said about itself."""
        async with self.db.begin() as conn:
            await conn.execute(
                update(instances)
                .where(instances.c.id == instance_id)
                .values(
                    software=info.software,
                    version=info.version,
                    supports_batch=info.supports_batch,
                    info_checked_at=info.checked_at,
                )
            )

    async def set_batch_support(self, instance_id: int, supported: bool | None) -> None:  # noqa: FBT001
        """Remember whether the instance has the batch accounts call."""
        async with self.db.begin() as conn:
            await conn.execute(
                update(instances)
                .where(instances.c.id == instance_id)
                .values(supports_batch=supported)
            )

    # -- accounts --------------------------------------------------------------------------

    async def add_account(self, resolved: ResolvedAccount, now: datetime) -> AccountRecord:
        """Track a resolved account; an untracked one comes back with its history.

        Raises:
            AlreadyTracked: the account is tracked already.
            StorageError: the database refused.
        """
        key = resolved.handle.key
        async with self.db.begin() as conn:
            instance = await self._ensure_instance(conn, resolved.home, now)
            values = {
                "username": resolved.handle.username,
                "domain": resolved.handle.domain,
                "instance_id": instance.id,
                "remote_id": resolved.remote_id,
                "display_name": resolved.display_name,
                "url": resolved.url,
                "state": AccountState.ACTIVE.value,
                "moved_to": None,
                "state_changed_at": now,
                "last_error": None,
                "last_error_code": None,
                "last_error_at": None,
                "consecutive_failures": 0,
            }
            existing = (
                await conn.execute(
                    select(accounts.c.id, accounts.c.state).where(accounts.c.acct_key == key)
                )
            ).first()
            if existing is not None and existing.state != AccountState.UNTRACKED.value:
                raise AlreadyTracked(f"{resolved.handle} is already tracked")
            if existing is None:
                result = await conn.execute(
                    insert_ignore(self.db.dialect, accounts).values(
                        acct_key=key, added_at=now, **values
                    )
                )
                if result.rowcount == 0:  # another process added it between our two statements
                    raise AlreadyTracked(f"{resolved.handle} is already tracked")
            else:
                await conn.execute(
                    update(accounts).where(accounts.c.id == existing.id).values(**values)
                )
            return await self._account_where(conn, accounts.c.acct_key == key)

    async def _account_where(self, conn: AsyncConnection, *where: Any) -> AccountRecord:  # noqa: ANN401
        row = (
            await conn.execute(
                select(*_ACCOUNT_COLUMNS)
                .join(instances, instances.c.id == accounts.c.instance_id)
                .where(*where)
            )
        ).one()
        return _account(row)

    async def find_account(self, handle: Handle) -> AccountRecord | None:
        """The account stored under ``handle`` (any state), or None."""
        async with self.db.connect() as conn:
            row = (
                await conn.execute(
                    select(*_ACCOUNT_COLUMNS)
                    .join(instances, instances.c.id == accounts.c.instance_id)
                    .where(accounts.c.acct_key == handle.key)
                )
            ).first()
        return None if row is None else _account(row)

    async def get_account(self, account_id: int) -> AccountRecord:
        """One account by id.

        Raises:
            NotTracked: no such account.
        """
        async with self.db.connect() as conn:
            row = (
                await conn.execute(
                    select(*_ACCOUNT_COLUMNS)
                    .join(instances, instances.c.id == accounts.c.instance_id)
                    .where(accounts.c.id == account_id)
                )
            ).first()
        if row is None:
            raise NotTracked(f"no account with id {account_id}")
        return _account(row)

    async def list_accounts(
        self,
        states: Collection[AccountState] | None = None,
        *,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[tuple[AccountRecord, SampleRecord | None]]:
        """Accounts (all states but untracked by default) with their latest sample, by handle."""
        wanted = _state_values(states)
        # The newest sample of each listed account, found by one seek in the primary key
        # (account_id, taken_at) per account. A GROUP BY over all samples scanned the whole
        # table: 560 ms (SQLite) and 360 ms (PostgreSQL) at a year of 10,000 accounts,
        # against about 100 ms this way (bench/storage.py --profile); a page of the list
        # now reads only its own accounts' samples.
        newest = account_samples.alias("newest")
        latest_taken = (
            select(func.max(newest.c.taken_at))
            .where(newest.c.account_id == accounts.c.id)
            .correlate(accounts)
            .scalar_subquery()
        )
        sample_cols = [
            account_samples.c.taken_at.label("s_taken_at"),
            account_samples.c.followers.label("s_followers"),
            account_samples.c.following.label("s_following"),
            account_samples.c.statuses.label("s_statuses"),
            account_samples.c.last_status_at.label("s_last_status_at"),
            account_samples.c.run_id.label("s_run_id"),
        ]
        stmt = (
            select(*_ACCOUNT_COLUMNS, *sample_cols)
            .join(instances, instances.c.id == accounts.c.instance_id)
            .outerjoin(
                account_samples,
                and_(
                    account_samples.c.account_id == accounts.c.id,
                    account_samples.c.taken_at == latest_taken,
                ),
            )
            .where(accounts.c.state.in_(wanted))
            .order_by(accounts.c.acct_key)
            .limit(limit)
            .offset(offset)
        )
        async with self.db.connect() as conn:
            rows = await conn.execute(stmt)
            result: list[tuple[AccountRecord, SampleRecord | None]] = []
            for row in rows:
                m = row._mapping  # noqa: SLF001
                sample = (
                    None
                    if m["s_taken_at"] is None
                    else SampleRecord(
                        account_id=m["id"],
                        taken_at=m["s_taken_at"],
                        followers=m["s_followers"],
                        following=m["s_following"],
                        statuses=m["s_statuses"],
                        last_status_at=m["s_last_status_at"],
                        run_id=m["s_run_id"],
                    )
                )
                result.append((_account(row), sample))
            return result

    async def list_account_records(
        self, states: Collection[AccountState] | None = None
    ) -> list[AccountRecord]:
        """Accounts (all states but untracked by default), by handle, without their samples.

        ``list_accounts`` less its latest-sample join, for callers that read samples anyway.
        """
        stmt = (
            select(*_ACCOUNT_COLUMNS)
            .join(instances, instances.c.id == accounts.c.instance_id)
            .where(accounts.c.state.in_(_state_values(states)))
            .order_by(accounts.c.acct_key)
        )
        async with self.db.connect() as conn:
            return [_account(row) for row in await conn.execute(stmt)]

    async def count_accounts(self, states: Collection[AccountState] | None = None) -> int:
        """How many accounts are in ``states`` (all but untracked by default)."""
        stmt = select(func.count()).where(accounts.c.state.in_(_state_values(states)))
        async with self.db.connect() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def accounts_to_measure(self, since: datetime | None) -> list[AccountRecord]:
        """Active accounts, less those already sampled at or after ``since`` (when given)."""
        stmt = (
            select(*_ACCOUNT_COLUMNS)
            .join(instances, instances.c.id == accounts.c.instance_id)
            .where(accounts.c.state == AccountState.ACTIVE.value)
            .order_by(accounts.c.instance_id, accounts.c.id)
        )
        if since is not None:
            stmt = stmt.where(
                ~exists().where(
                    account_samples.c.account_id == accounts.c.id,
                    account_samples.c.taken_at >= since,
                )
            )
        async with self.db.connect() as conn:
            return [_account(row) for row in await conn.execute(stmt)]

    async def untrack_account(self, account_id: int, now: datetime) -> None:
        """Stop measuring an account; its samples stay."""
        async with self.db.begin() as conn:
            await conn.execute(
                update(accounts)
                .where(accounts.c.id == account_id)
                .values(state=AccountState.UNTRACKED.value, state_changed_at=now)
            )

    async def delete_account(self, account_id: int) -> int:
        """Delete an account and its whole history; returns the number of samples deleted."""
        async with self.db.begin() as conn:
            count = (
                await conn.execute(
                    select(func.count()).where(account_samples.c.account_id == account_id)
                )
            ).scalar_one()
            # Explicit deletes rather than relying on ON DELETE CASCADE, which SQLite only
            # honours with its foreign_keys pragma on.
            await conn.execute(delete(run_failures).where(run_failures.c.account_id == account_id))
            await conn.execute(
                delete(account_samples).where(account_samples.c.account_id == account_id)
            )
            await conn.execute(delete(accounts).where(accounts.c.id == account_id))
            return int(count)

    # -- samples ---------------------------------------------------------------------------

    async def samples(
        self, account_id: int, since: datetime | None = None, until: datetime | None = None
    ) -> list[SampleRecord]:
        """An account's samples in ``[since, until]``, oldest first."""
        stmt = (
            select(*_SAMPLE_COLUMNS)
            .where(account_samples.c.account_id == account_id)
            .order_by(account_samples.c.taken_at)
        )
        if since is not None:
            stmt = stmt.where(account_samples.c.taken_at >= since)
        if until is not None:
            stmt = stmt.where(account_samples.c.taken_at <= until)
        async with self.db.connect() as conn:
            # By position, not by name: a year of samples is 5.6 -> 3.9 ms (bench/api.py).
            return [SampleRecord(*row) for row in await conn.execute(stmt)]

    async def sample_at_or_before(
        self, account_id: int, moment: datetime | None = None
    ) -> SampleRecord | None:
        """The newest sample of an account taken at or before ``moment`` (or at all)."""
        stmt = (
            select(*_SAMPLE_COLUMNS)
            .where(account_samples.c.account_id == account_id)
            .order_by(account_samples.c.taken_at.desc())
            .limit(1)
        )
        if moment is not None:
            stmt = stmt.where(account_samples.c.taken_at <= moment)
        async with self.db.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else SampleRecord(*row)

    async def data_version(self) -> tuple[object, ...]:
        """A cheap fingerprint that changes whenever accounts or their samples may have.

        Rounds touch their heartbeat with every commit; adding, removing and state changes
        move the accounts' count, newest id or newest state change. Caches of derived views
        (the dashboard's overview) compare it instead of reading the samples again.
        """
        stmt = select(
            select(func.max(runs.c.heartbeat_at)).scalar_subquery().label("rounds"),
            select(func.count()).select_from(accounts).scalar_subquery().label("n"),
            select(func.max(accounts.c.id)).scalar_subquery().label("newest"),
            select(func.max(accounts.c.state_changed_at)).scalar_subquery().label("changed"),
        )
        async with self.db.connect() as conn:
            return tuple((await conn.execute(stmt)).one())

    async def samples_at_or_before(
        self, moment: datetime, states: Collection[AccountState] | None = None
    ) -> dict[int, SampleRecord]:
        """Each account's newest sample taken at or before ``moment``, by account id.

        Accounts in ``states`` (all but untracked by default) with no such sample are left
        out. One index seek per account, as ``list_accounts``: the overview's 1, 7 and
        30-day changes cost three of these, however long the history.
        """
        older = account_samples.alias("older")
        taken = (
            select(func.max(older.c.taken_at))
            .where(older.c.account_id == accounts.c.id, older.c.taken_at <= moment)
            .correlate(accounts)
            .scalar_subquery()
        )
        stmt = (
            select(*_SAMPLE_COLUMNS)
            .select_from(accounts)
            .join(
                account_samples,
                and_(
                    account_samples.c.account_id == accounts.c.id,
                    account_samples.c.taken_at == taken,
                ),
            )
            .where(accounts.c.state.in_(_state_values(states)))
        )
        async with self.db.connect() as conn:
            return {row[0]: SampleRecord(*row) for row in await conn.execute(stmt)}

    async def histories(
        self, account_ids: Collection[int] | None, since: datetime, until: datetime
    ) -> dict[int, list[SampleRecord]]:
        """Each account's samples in ``[since, until]`` plus its last one before ``since``.

        ``account_ids`` None means every account but the untracked. Two queries whatever the
        number of accounts (no id list is sent for "all", so no driver limit is reached);
        oldest first per account.
        """
        if account_ids is None:
            chosen = accounts.c.state.in_(_state_values(None))
        else:
            chosen = accounts.c.id.in_(list(account_ids))
        taken = account_samples.c.taken_at
        # Each account's last sample before ``since``: one seek in the primary key
        # (account_id, taken_at) per account. A GROUP BY walked every older sample of the
        # table instead: 0.8 s on SQLite at a year of 10,000 accounts (bench/storage.py),
        # and growing with the history.
        previous = account_samples.alias("previous")
        last_before = (
            select(func.max(previous.c.taken_at))
            .where(previous.c.account_id == accounts.c.id, previous.c.taken_at < since)
            .correlate(accounts)
            .scalar_subquery()
        )
        earlier = (
            select(*_SAMPLE_COLUMNS)
            .select_from(accounts)
            .join(
                account_samples,
                and_(account_samples.c.account_id == accounts.c.id, taken == last_before),
            )
            .where(chosen)
        )
        # Then a range scan of the primary key per account. (One query with the range
        # starting at the sample before fits SQLite, but PostgreSQL cannot estimate such a
        # range and hashed the whole table instead: 18 s.)
        window = (
            select(*_SAMPLE_COLUMNS)
            .where(
                account_samples.c.account_id.in_(select(accounts.c.id).where(chosen)),
                taken >= since,
                taken <= until,
            )
            .order_by(account_samples.c.account_id, taken)
        )
        result: dict[int, list[SampleRecord]] = {}
        async with self.db.connect() as conn:
            for query in (earlier, window):
                # A report reads hundreds of thousands of rows: each record is built from the
                # row's positions (the columns are selected in field order) rather than
                # through _record, which matches names row by row and made this three times
                # slower. Rows come by account, so each account's list is looked up once.
                # (Rows are turned into records one at a time: taking them all first with
                # .all() saved 40 ms but held 300,000 rows at once, 57 MiB more at the peak.)
                current_id: int | None = None
                current: list[SampleRecord] = []
                for row in await conn.execute(query):
                    record = SampleRecord(*row)
                    if record.account_id != current_id:
                        current_id = record.account_id
                        current = result.setdefault(current_id, [])
                    current.append(record)
        return result

    async def stream_samples(
        self, since: datetime | None = None, until: datetime | None = None, *, chunk: int = 2000
    ) -> AsyncIterator[tuple[Handle, SampleRecord]]:
        """Every sample in ``[since, until]`` with its account's handle, by account then time.

        Rows are fetched ``chunk`` at a time (a server-side cursor on PostgreSQL), so memory
        stays flat however many millions of samples there are.
        """
        stmt = (
            select(account_samples, accounts.c.username, accounts.c.domain)
            .join(accounts, accounts.c.id == account_samples.c.account_id)
            .order_by(accounts.c.acct_key, account_samples.c.taken_at)
            .execution_options(yield_per=chunk)
        )
        if since is not None:
            stmt = stmt.where(account_samples.c.taken_at >= since)
        if until is not None:
            stmt = stmt.where(account_samples.c.taken_at <= until)
        async with self.db.connect() as conn:
            result = await conn.stream(stmt)
            async for row in result:
                yield Handle(row.username, row.domain), _record(SampleRecord, row)

    async def count_samples(self) -> int:
        """Number of samples stored, over all accounts."""
        async with self.db.connect() as conn:
            return int(
                (await conn.execute(select(func.count()).select_from(account_samples))).scalar_one()
            )

    # -- runs ------------------------------------------------------------------------------

    async def start_run(
        self,
        now: datetime,
        owner: str,
        is_alive: Any,  # noqa: ANN401 - Callable[[RunRecord], bool], see collect.py
    ) -> tuple[RunRecord, RunRecord | None]:
        """Open a round; returns it and the interrupted round it resumes, if any.

        ``is_alive(run)`` tells whether a round marked running still has a live owner.
        Rounds whose owner died are marked interrupted; when the newest round was interrupted
        or failed (a full disk, say) and nothing has resumed it yet, this one resumes it.

        Raises:
            RoundInProgress: a round with a live owner is running.
        """
        async with self.db.begin() as conn:
            return await self.open_run_in(conn, now, owner, is_alive)

    async def open_run_in(
        self,
        conn: AsyncConnection,
        now: datetime,
        owner: str,
        is_alive: Any,  # noqa: ANN401 - Callable[[RunRecord], bool]
    ) -> tuple[RunRecord, RunRecord | None]:
        """``start_run`` inside the caller's transaction (which it may extend, e.g. with a plan).

        Raises:
            RoundInProgress: a round with a live owner is running.
        """
        if self.db.dialect == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ROUND_LOCK})
        # Write first: on SQLite this takes the write lock, so the check below sees every
        # round another process committed before us.
        new_id = (
            await conn.execute(
                insert(runs)
                .values(
                    started_at=now,
                    heartbeat_at=now,
                    status="running",
                    owner=owner,
                    accounts_planned=0,
                    accounts_measured=0,
                    accounts_failed=0,
                    requests=0,
                    rate_limited=0,
                    rate_limit_wait_seconds=0.0,
                    retries=0,
                )
                .returning(runs.c.id)
            )
        ).scalar_one()
        running = [
            _record(RunRecord, row)
            for row in await conn.execute(
                select(runs).where(runs.c.status == "running", runs.c.id != new_id)
            )
        ]
        for run in running:
            if is_alive(run):
                raise RoundInProgress(
                    f"round {run.id} is still running (owner {run.owner}, last heard"
                    f" {run.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC); wait for it to finish"
                )
            await conn.execute(
                update(runs)
                .where(runs.c.id == run.id)
                .values(status="interrupted", error="the process running it stopped")
            )
        resumed_by = select(runs.c.resumes_run_id).where(runs.c.resumes_run_id.is_not(None))
        last = (
            await conn.execute(
                select(runs).where(runs.c.id != new_id).order_by(runs.c.id.desc()).limit(1)
            )
        ).first()
        resumed: RunRecord | None = None
        if (
            last is not None
            and last.status in _RESUMABLE
            and last.id not in set((await conn.execute(resumed_by)).scalars())
        ):
            resumed = _record(RunRecord, last)
            await conn.execute(
                update(runs).where(runs.c.id == new_id).values(resumes_run_id=last.id)
            )
        row = (await conn.execute(select(runs).where(runs.c.id == new_id))).one()
        return _record(RunRecord, row), resumed

    async def set_planned(self, run_id: int, planned: int) -> None:
        """Record how many accounts the round set out to measure."""
        async with self.db.begin() as conn:
            await conn.execute(
                update(runs).where(runs.c.id == run_id).values(accounts_planned=planned)
            )

    async def commit_batch(
        self,
        run_id: int,
        now: datetime,
        progress: RunProgress,
        *,
        samples: Sequence[NewSample] = (),
        failures: Sequence[NewFailure] = (),
        state_changes: Sequence[AccountStateChange] = (),
    ) -> None:
        """Store a batch of results and the round's totals in one transaction.

        A crash loses at most the batch being written; a repeated sample is ignored.

        Raises:
            StorageError: the database refused (nothing of the batch is stored).
        """
        async with self.db.begin() as conn:
            await self.write_results_in(
                conn, run_id, samples=samples, failures=failures, state_changes=state_changes
            )
            await conn.execute(
                _SAVE_PROGRESS, {"run_id": run_id, "heartbeat_at": now, **_progress(progress)}
            )

    async def write_results_in(
        self,
        conn: AsyncConnection,
        run_id: int,
        *,
        samples: Sequence[NewSample] = (),
        failures: Sequence[NewFailure] = (),
        state_changes: Sequence[AccountStateChange] = (),
    ) -> None:
        """Store a round's results in the caller's transaction (a repeated sample is ignored)."""
        if samples:
            await conn.execute(
                insert_ignore(self.db.dialect, account_samples),
                [
                    {
                        "account_id": s.account_id,
                        "taken_at": s.taken_at,
                        "followers": s.followers,
                        "following": s.following,
                        "statuses": s.statuses,
                        "last_status_at": s.last_status_at,
                        "run_id": run_id,
                    }
                    for s in samples
                ],
            )
            # Only the accounts that were failing have anything to clear: no write for others.
            await conn.execute(_CLEAR_FAILURES, {"ids": [s.account_id for s in samples]})
        for failure in failures:
            await conn.execute(
                insert_ignore(self.db.dialect, run_failures).values(
                    run_id=run_id,
                    account_id=failure.account_id,
                    code=failure.code,
                    reason=failure.reason,
                    at=failure.at,
                )
            )
            await conn.execute(
                update(accounts)
                .where(accounts.c.id == failure.account_id)
                .values(
                    last_error=failure.reason,
                    last_error_code=failure.code,
                    last_error_at=failure.at,
                    consecutive_failures=accounts.c.consecutive_failures + 1,
                )
            )
        for change in state_changes:
            await conn.execute(
                update(accounts)
                .where(accounts.c.id == change.account_id)
                .values(
                    state=change.state.value,
                    moved_to=change.moved_to,
                    state_changed_at=change.at,
                )
            )

    async def heartbeat(self, run_id: int, now: datetime) -> None:
        """Say the round's owner is alive while it waits (rate limits, slow hosts)."""
        async with self.db.begin() as conn:
            await conn.execute(update(runs).where(runs.c.id == run_id).values(heartbeat_at=now))

    async def finish_run(
        self,
        run_id: int,
        now: datetime,
        progress: RunProgress,
        status: str = "finished",
        error: str | None = None,
    ) -> RunRecord:
        """Close a round with its final totals."""
        async with self.db.begin() as conn:
            await conn.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(
                    finished_at=now,
                    heartbeat_at=now,
                    status=status,
                    error=error,
                    **dataclasses.asdict(progress),
                )
            )
            return _record(
                RunRecord, (await conn.execute(select(runs).where(runs.c.id == run_id))).one()
            )

    async def get_run(self, run_id: int) -> RunRecord:
        """One round by id.

        Raises:
            NotTracked: no such round.
        """
        async with self.db.connect() as conn:
            row = (await conn.execute(select(runs).where(runs.c.id == run_id))).first()
        if row is None:
            raise NotTracked(f"no round with id {run_id}")
        return _record(RunRecord, row)

    async def running_run(self) -> RunRecord | None:
        """The newest round marked running, if any."""
        async with self.db.connect() as conn:
            row = (
                await conn.execute(
                    select(runs).where(runs.c.status == "running").order_by(runs.c.id.desc())
                )
            ).first()
        return None if row is None else _record(RunRecord, row)

    async def list_runs(self, limit: int = 20) -> list[RunRecord]:
        """The most recent rounds, newest first."""
        async with self.db.connect() as conn:
            rows = await conn.execute(select(runs).order_by(runs.c.id.desc()).limit(limit))
            return [_record(RunRecord, row) for row in rows]

    async def run_failures(self, run_ids: Iterable[int]) -> list[FailureRecord]:
        """The failures recorded in the given rounds, by handle."""
        stmt = (
            select(
                run_failures,
                accounts.c.username,
                accounts.c.domain,
            )
            .join(accounts, accounts.c.id == run_failures.c.account_id)
            .where(run_failures.c.run_id.in_(list(run_ids)))
            .order_by(accounts.c.acct_key)
        )
        async with self.db.connect() as conn:
            return [
                FailureRecord(
                    run_id=row.run_id,
                    account_id=row.account_id,
                    handle=Handle(row.username, row.domain),
                    code=row.code,
                    reason=row.reason,
                    at=row.at,
                )
                for row in await conn.execute(stmt)
            ]
