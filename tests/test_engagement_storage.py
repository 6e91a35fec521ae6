"""Engagement in storage, on SQLite and PostgreSQL: on and off, readings, gone statuses, coverage.

The simulated fediverse cannot delete a status, so readings are written here by hand: a
reading is what ``read_statuses`` returns.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fedimeter.domain.engagement import SeenStatus
from fedimeter.domain.models import AccountState, Handle, InstanceAddress, ResolvedAccount
from fedimeter.fediverse.statuses import StatusesRead
from fedimeter.storage.engagement import EngagementStore
from fedimeter.storage.records import AccountStateChange, NewSample, RunProgress
from fedimeter.storage.repository import Repository

T0 = datetime(2026, 3, 9, 3, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HOME = InstanceAddress("social.example")


async def add(repo: Repository, name: str, remote_id: str) -> int:
    """A tracked account; its id."""
    account = await repo.add_account(
        ResolvedAccount(Handle(name, "social.example"), HOME, remote_id), T0 - 30 * DAY
    )
    return account.id


def status(status_id: str, days_ago: float, favourites: int = 0, **changes: object) -> SeenStatus:
    """A post of ``days_ago`` days before T0."""
    values: dict[str, object] = {
        "id": status_id,
        "created_at": T0 - timedelta(days=days_ago),
        "kind": "post",
        "favourites": favourites,
        "reblogs": 0,
        "replies": 0,
        "url": f"https://social.example/@a/{status_id}",
        "excerpt": f"post {status_id}",
    }
    values.update(changes)
    return SeenStatus(**values)  # type: ignore[arg-type]


def reading(*statuses: SeenStatus, since: datetime, requests: int = 1) -> StatusesRead:
    """A reading that covered everything from ``since`` on."""
    return StatusesRead(statuses, requests, requests - 1, covered_since=since)


@pytest.fixture
def store(repo: Repository) -> EngagementStore:
    """The engagement store over the test database."""
    return EngagementStore(repo.db)


async def test_on_off_and_on_again(repo: Repository, store: EngagementStore) -> None:
    """On is idempotent; off keeps the statuses; on again starts the coverage anew."""
    alice = await add(repo, "alice", "1")
    assert await store.get(alice) is None
    assert await store.enable(alice, T0) is True
    assert await store.enable(alice, T0 + DAY) is False
    await store.store_read(alice, reading(status("a", 1), since=T0 - 7 * DAY), T0)
    assert await store.disable(alice) == (True, 0)
    assert await store.disable(alice) == (False, 0)
    state = await store.get(alice)
    assert state is not None
    assert (state.enabled, state.read_at, state.covered_since) == (False, T0, T0 - 7 * DAY)
    assert [a.account.id for a in await store.accounts()] == []
    assert [a.account.id for a in await store.accounts(enabled=False)] == [alice]
    assert len(await store.statuses(alice)) == 1
    assert await store.enable(alice, T0 + 2 * DAY) is True
    state = await store.get(alice)
    assert state is not None
    assert (state.enabled_at, state.read_at, state.covered_since) == (T0 + 2 * DAY, None, None)


async def test_purge_deletes_the_statuses(repo: Repository, store: EngagementStore) -> None:
    """Off with purge: statuses and state gone, as if engagement had never been on."""
    alice = await add(repo, "alice", "1")
    await store.enable(alice, T0)
    await store.store_read(alice, reading(status("a", 1), status("b", 2), since=T0), T0)
    assert await store.disable(alice, purge=True) == (True, 2)
    assert await store.get(alice) is None
    assert await store.count_statuses(alice) == 0


async def test_readings_rewrite_counts_and_mark_what_vanished(
    repo: Repository, store: EngagementStore
) -> None:
    """Counts are the latest reading's; what a covering reading no longer finds is gone.

    A gone status is left out of the figures, and back when found again; statuses older than
    a reading's range are left alone.
    """
    alice = await add(repo, "alice", "1")
    await store.enable(alice, T0)
    first = reading(status("a", 6, 1), status("b", 3, 2), status("c", 1, 3), since=T0 - 7 * DAY)
    assert await store.store_read(alice, first, T0) == 0
    second = reading(status("b", 3, 20), status("d", 0.5, 4), since=T0 - 5 * DAY)
    assert await store.store_read(alice, second, T0 + DAY) == 1  # c vanished; a not covered
    shown = {s.id: s for s in await store.statuses(alice)}
    assert sorted(shown) == ["a", "b", "d"]
    assert (shown["a"].favourites, shown["a"].last_seen_at) == (1, T0)
    assert (shown["b"].favourites, shown["b"].first_seen_at, shown["b"].last_seen_at) == (
        20,
        T0,
        T0 + DAY,
    )
    everything = {s.id: s for s in await store.statuses(alice, include_gone=True)}
    assert everything["c"].gone_at == T0 + DAY
    again = reading(status("b", 3, 21), status("c", 1, 5), status("d", 0.5, 4), since=T0 - 4 * DAY)
    assert await store.store_read(alice, again, T0 + 2 * DAY) == 0
    back = {s.id: s for s in await store.statuses(alice)}
    assert (back["c"].gone_at, back["c"].favourites) == (None, 5)


async def test_a_chain_of_readings_keeps_its_coverage_and_a_gap_restarts_it(
    repo: Repository, store: EngagementStore
) -> None:
    """Each reading reaching back to the previous one keeps the first's start."""
    alice = await add(repo, "alice", "1")
    await store.enable(alice, T0)
    await store.store_read(alice, reading(since=T0 - 7 * DAY), T0)
    await store.store_read(alice, reading(since=T0 - 6 * DAY), T0 + DAY)
    state = await store.get(alice)
    assert state is not None
    assert state.covered_since == T0 - 7 * DAY
    # The next reading starts after the previous one (rounds stopped, a capped reading).
    await store.store_read(alice, reading(since=T0 + 3 * DAY), T0 + 10 * DAY)
    state = await store.get(alice)
    assert state is not None
    assert (state.covered_since, state.read_at) == (T0 + 3 * DAY, T0 + 10 * DAY)


async def test_due_accounts_are_on_active_and_not_read_since(
    repo: Repository, store: EngagementStore
) -> None:
    """Off, gone, and already read (or failed) since the round's start are not due."""
    alice, bob, carol, dave = [
        await add(repo, name, str(n)) for n, name in enumerate(["alice", "bob", "carol", "dave"])
    ]
    for account in (alice, bob, carol):
        await store.enable(account, T0)
    run, _ = await repo.start_run(T0, "test", lambda _run: False)
    await repo.commit_batch(
        run.id,
        T0,
        RunProgress(),
        state_changes=[AccountStateChange(carol, AccountState.GONE, T0)],
    )
    assert [a.account.id for a in await store.due()] == [alice, bob]
    await store.store_read(alice, reading(since=T0), T0 + DAY)
    await store.record_failure(bob, "not_found", "gone", T0 + DAY)
    assert [a.account.id for a in await store.due(T0 + DAY)] == []
    assert [a.account.id for a in await store.due(T0)] == []
    assert [a.account.id for a in await store.due(T0 + 2 * DAY)] == [alice, bob]
    state = await store.get(bob)
    assert state is not None
    assert (state.consecutive_failures, state.last_error) == (1, "gone")
    assert await store.get(dave) is None
    assert await store.instances_with_engagement() == {(await repo.get_account(alice)).instance_id}


async def test_deleting_an_account_deletes_its_engagement(
    repo: Repository, store: EngagementStore
) -> None:
    """``track remove --purge`` leaves nothing of the account behind, statuses included."""
    alice = await add(repo, "alice", "1")
    await store.enable(alice, T0)
    await store.store_read(alice, reading(status("a", 1), since=T0), T0)
    await repo.delete_account(alice)
    assert await store.get(alice) is None
    assert await store.count_statuses(alice) == 0


async def test_followers_around_a_period(repo: Repository, store: EngagementStore) -> None:
    """The samples in the period, with the last before it and the first after it."""
    alice = await add(repo, "alice", "1")
    run, _ = await repo.start_run(T0, "test", lambda _run: False)
    moments = [T0 - 3 * DAY, T0 - 2 * DAY, T0, T0 + DAY, T0 + 3 * DAY, T0 + 4 * DAY]
    await repo.commit_batch(
        run.id,
        T0,
        RunProgress(),
        samples=[NewSample(alice, at, n * 10, 0, 0, None) for n, at in enumerate(moments)],
    )
    points = await store.followers(alice, T0 - DAY, T0 + 2 * DAY)
    assert [(p.taken_at, p.followers) for p in points] == [
        (T0 - 2 * DAY, 10),
        (T0, 20),
        (T0 + DAY, 30),
        (T0 + 3 * DAY, 40),
    ]


async def test_a_status_on_two_pages_is_stored_once(
    repo: Repository, store: EngagementStore
) -> None:
    """The timeline moved while it was read: the first (newer) sighting's counts are kept."""
    alice = await add(repo, "alice", "1")
    await store.enable(alice, T0)
    twice = reading(status("a", 1, 7), status("b", 2), status("a", 1, 6), since=T0 - DAY * 3)
    await store.store_read(alice, twice, T0)
    shown = {s.id: s.favourites for s in await store.statuses(alice)}
    assert shown == {"a": 7, "b": 0}
