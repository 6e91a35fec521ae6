"""Engagement of accounts: turning it on and off, reading timelines in a round, its figures.

Engagement costs requests, so it is on only for the accounts a person chose (``fedimeter
track engagement``, ``PUT /api/v1/accounts/{id}/engagement``). Each round reads each such
account's public timeline on its home server, newest first, back to ``engagement_days`` ago
(or to the previous reading, when rounds stopped for longer: a gap loses no status), 40
statuses a page: ``n`` statuses in the window cost ``n // 40 + 1`` requests, all but the
first of them paging requests, paced by the host's paging budget (``fediverse/paging.py``).
Accounts without engagement cost nothing. What the figures mean: ``domain/engagement.py``;
how they are stored: ``storage/engagement.py``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from fedimeter.clock import Clock, utc_now
from fedimeter.domain.engagement import engagement_buckets, engagement_figures, known_span
from fedimeter.domain.engagement_report import EngagementLine
from fedimeter.domain.handles import parse_account_ref
from fedimeter.domain.models import AccountState
from fedimeter.errors import FedimeterError, FediverseError, Halted, InvalidInput, NotTracked
from fedimeter.tracking import find_tracked

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from datetime import datetime

    from fedimeter.config import Settings
    from fedimeter.domain.engagement import Bucket, EngagementFigures
    from fedimeter.fediverse import FediverseClient
    from fedimeter.fediverse.statuses import StatusesRead
    from fedimeter.storage.engagement import EngagementAccount, EngagementStore
    from fedimeter.storage.records import AccountRecord
    from fedimeter.storage.repository import Repository

__all__ = [
    "MEASURE_CONCURRENCY",
    "REPORT_BEST_POSTS",
    "EngagementChange",
    "EngagementRead",
    "EngagementRound",
    "EngagementView",
    "enable_engagement",
    "engagement_lines",
    "engagement_view",
    "measure_account_engagement",
    "measure_engagement",
    "measure_host_engagement",
    "set_engagement",
    "window_start",
]

#: Timelines read at once in a round; the client paces each host on top.
MEASURE_CONCURRENCY = 8
#: Best posts a report shows per account.
REPORT_BEST_POSTS = 3

log = logging.getLogger("fedimeter.engagement")


@dataclass(frozen=True, slots=True)
class EngagementChange:
    """What happened to one handle given to ``set_engagement``."""

    text: str
    status: Literal["on", "already_on", "off", "already_off", "failed"]
    account: AccountRecord | None = None
    #: Statuses deleted (turning off with ``purge``).
    statuses_deleted: int = 0
    error: FedimeterError | None = None


@dataclass(frozen=True, slots=True)
class EngagementRead:
    """One account's timeline read in a round: what it found, or why it failed."""

    read: StatusesRead | None = None
    #: Stored statuses the reading no longer found.
    gone: int = 0
    error: FediverseError | None = None


@dataclass(slots=True)
class EngagementRound:
    """What a round did with engagement, and what it cost."""

    #: Timelines read, the statuses they found, and the requests they took (the paging
    #: ones among them).
    accounts: int = 0
    statuses: int = 0
    requests: int = 0
    paging_requests: int = 0
    #: Accounts (``user@domain``) whose reading stopped at ``engagement_max_pages``.
    capped: list[str] = field(default_factory=list)
    #: Accounts (``user@domain``) whose reading failed, with the reason.
    failed: list[tuple[str, FediverseError]] = field(default_factory=list)

    def add(self, handle: str, outcome: EngagementRead) -> None:
        """Count one account's outcome."""
        if outcome.error is not None:
            self.failed.append((handle, outcome.error))
            return
        if outcome.read is None:  # pragma: no cover - a read without error has it
            return
        self.accounts += 1
        self.statuses += len(outcome.read.statuses)
        self.requests += outcome.read.requests
        self.paging_requests += outcome.read.paging_requests
        if outcome.read.capped:
            self.capped.append(handle)


def window_start(now: datetime, read_at: datetime | None, days: int) -> datetime:
    """Where a reading starts: ``days`` before ``now``, or the previous reading when older.

    Rounds that stopped for longer than the window would otherwise never see the statuses
    posted (and only read) in between.
    """
    start = now - timedelta(days=days)
    return start if read_at is None else min(start, read_at)


async def set_engagement(
    repo: Repository,
    store: EngagementStore,
    texts: Sequence[str],
    *,
    on: bool,
    purge: bool = False,
    default_scheme: str = "https",
    clock: Clock = utc_now,
) -> list[EngagementChange]:
    """Turn engagement on (or off) for each tracked account of ``texts``.

    On: its timeline is read from the next round on. Off: it is no longer read; its stored
    statuses stay unless ``purge``. Every input gets an outcome: a handle that is not
    tracked carries ``NotTracked``, a text that is no handle ``InvalidHandle``.

    Raises:
        StorageError: the database refused.
    """
    if purge and on:
        raise InvalidInput("--purge deletes the statuses read: give it with --off only")
    changes: list[EngagementChange] = []
    for text in texts:
        try:
            ref = parse_account_ref(text, default_scheme=default_scheme)
            account = await find_tracked(repo, ref)
            if account is None:
                raise NotTracked(f"{ref.handle} is not tracked (add it with: fedimeter track add)")
            if on:
                added = await enable_engagement(store, account, clock())
                changes.append(EngagementChange(text, "on" if added else "already_on", account))
            else:
                was_on, deleted = await store.disable(account.id, purge=purge)
                status: Literal["off", "already_off"] = "off" if was_on else "already_off"
                changes.append(EngagementChange(text, status, account, deleted))
        except FedimeterError as exc:
            changes.append(EngagementChange(text, "failed", error=exc))
    return changes


async def enable_engagement(store: EngagementStore, account: AccountRecord, now: datetime) -> bool:
    """Turn engagement on for ``account``: its timeline is read from the next round on.

    Returns:
        False when it was on already.

    Raises:
        NotTracked: the account is no longer tracked.
        StorageError: the database refused.
    """
    if account.state is AccountState.UNTRACKED:
        raise NotTracked(
            f"{account.handle} is not tracked any more (add it again with: fedimeter track add)"
        )
    return await store.enable(account.id, now)


async def measure_account_engagement(
    store: EngagementStore,
    client: FediverseClient,
    entry: EngagementAccount,
    *,
    days: int,
    max_pages: int,
    clock: Clock = utc_now,
    before_storing: Callable[[], Awaitable[None]] | None = None,
) -> EngagementRead | None:
    """Read one account's timeline and store it, or record why it could not be read.

    ``before_storing`` runs between reading and storing (a worker checks it still holds the
    host) and may raise to keep the reading out.

    Returns:
        What was read and stored, or what failed (recorded as one more failure in a row);
        None when the round is stopping (the round that resumes it reads the account).

    Raises:
        StorageError: the database refused.
    """
    account = entry.account
    since = window_start(clock(), entry.read_at, days)
    try:
        read = await client.account_statuses(
            account.home, account.remote_id, since=since, max_pages=max_pages
        )
    except Halted:
        return None
    except FediverseError as exc:
        if before_storing is not None:
            await before_storing()
        await store.record_failure(account.id, exc.code, str(exc), clock())
        # Recorded with the account and reported by the round; the server logs it too.
        log.info("engagement of %s not read: %s", account.handle, exc)
        return EngagementRead(error=exc)
    if before_storing is not None:
        await before_storing()
    gone = await store.store_read(account.id, read, clock())
    return EngagementRead(read=read, gone=gone)


async def _read_all(
    store: EngagementStore,
    client: FediverseClient,
    settings: Settings,
    due: Sequence[EngagementAccount],
    *,
    clock: Clock,
    before_storing: Callable[[], Awaitable[None]] | None = None,
) -> EngagementRound:
    done = EngagementRound()
    slots = asyncio.Semaphore(MEASURE_CONCURRENCY)

    async def one(entry: EngagementAccount) -> None:
        async with slots:
            outcome = await measure_account_engagement(
                store,
                client,
                entry,
                days=settings.engagement_days,
                max_pages=settings.engagement_max_pages,
                clock=clock,
                before_storing=before_storing,
            )
        if outcome is not None:
            done.add(entry.account.handle.acct, outcome)

    async with asyncio.TaskGroup() as group:
        for entry in due:
            group.create_task(one(entry))
    done.failed.sort(key=lambda pair: pair[0])
    done.capped.sort()
    return done


async def measure_engagement(
    store: EngagementStore,
    client: FediverseClient,
    settings: Settings,
    *,
    measured_since: datetime | None = None,
    clock: Clock = utc_now,
) -> EngagementRound:
    """Read the timeline of every active account with engagement on; store what it shows.

    Accounts read (or failed) at or after ``measured_since`` (a resumed round) are skipped.
    A failure is recorded on the account and never stops the others.

    Raises:
        StorageError: the database refused.
    """
    due = await store.due(measured_since)
    return await _read_all(store, client, settings, due, clock=clock)


async def measure_host_engagement(
    store: EngagementStore,
    client: FediverseClient,
    settings: Settings,
    due: Sequence[EngagementAccount],
    *,
    clock: Clock = utc_now,
    before_storing: Callable[[], Awaitable[None]] | None = None,
) -> EngagementRound:
    """Read the timelines of one host's accounts ``due`` (a worker, under its lease).

    Raises:
        StorageError: the database refused.
        LeaseLost: raised by ``before_storing``.
    """
    return await _read_all(store, client, settings, due, clock=clock, before_storing=before_storing)


# -- figures ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EngagementView:
    """An account's engagement over a period: the whole period, and day by day (or weekly)."""

    state: EngagementAccount
    figures: EngagementFigures
    buckets: tuple[EngagementFigures, ...]
    by: Bucket

    @property
    def partial(self) -> bool:
        """Whether statuses of the period's start were not (all) read."""
        covered = self.state.covered_since
        return covered is None or covered > self.figures.since


async def engagement_view(
    store: EngagementStore,
    account_id: int,
    *,
    since: datetime,
    until: datetime,
    by: Bucket = "day",
    top: int = 5,
) -> EngagementView:
    """The account's engagement over ``[since, until)``, with its ``top`` best posts.

    Raises:
        NotTracked: engagement was never on for the account.
        InvalidInput: the period is empty, or ``by`` is neither day nor week.
        StorageError: the database refused.
    """
    state = await store.get(account_id)
    if state is None:
        raise NotTracked(
            f"engagement is not on for account {account_id}"
            " (turn it on with: fedimeter track engagement HANDLE)"
        )
    if since >= until:
        raise InvalidInput("the period is empty: since must be before until")
    statuses = await store.statuses(account_id, since)
    followers = await store.followers(account_id, since, until)
    read_at = state.read_at if state.enabled else None
    # Buckets only where something was read: a period from 1970, or to 2999, is answered
    # with the account's own days, not with one empty bucket per day since the epoch.
    first, last = (statuses[0], statuses[-1]) if statuses else (None, None)
    span = known_span(
        since,
        until,
        by,
        (
            state.covered_since,
            state.enabled_at,
            state.read_at,
            first.created_at if first else None,
            last.created_at if last else None,
        ),
    )
    try:
        figures = engagement_figures(
            statuses, followers, since=since, until=until, top=top, read_at=read_at
        )
        buckets = (
            []
            if span is None
            else engagement_buckets(
                statuses, followers, since=span[0], until=span[1], by=by, read_at=read_at
            )
        )
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    return EngagementView(state, figures, tuple(buckets), by)


async def engagement_lines(
    store: EngagementStore,
    account_ids: Sequence[int] | None,
    *,
    since: datetime,
    until: datetime,
    top: int = REPORT_BEST_POSTS,
) -> tuple[EngagementLine, ...]:
    """The report lines of the accounts with engagement on (of ``account_ids`` when given).

    Raises:
        StorageError: the database refused.
    """
    if since >= until:
        return ()
    lines = []
    for state in await store.accounts(account_ids):
        account = state.account
        statuses = await store.statuses(account.id, since)
        followers = await store.followers(account.id, since, until)
        figures = engagement_figures(
            statuses, followers, since=since, until=until, top=top, read_at=state.read_at
        )
        lines.append(
            EngagementLine(
                handle=account.handle.acct,
                figures=figures,
                covered_since=state.covered_since,
                read_at=state.read_at,
                failures=state.consecutive_failures,
                last_error=state.last_error,
            )
        )
    return tuple(lines)
