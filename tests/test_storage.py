"""Storage on SQLite and PostgreSQL: migrations, accounts, samples, rounds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.exc import StatementError

from fedimeter.domain.models import AccountState, Handle, InstanceAddress, ResolvedAccount
from fedimeter.errors import AlreadyTracked, NotTracked, RoundInProgress, StorageError
from fedimeter.storage.database import Database
from fedimeter.storage.records import (
    AccountStateChange,
    NewFailure,
    NewSample,
    RunProgress,
    RunRecord,
)
from fedimeter.storage.repository import Repository

T0 = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)
HOME = InstanceAddress("social.example")


def resolved(name: str, remote_id: str = "1", home: InstanceAddress = HOME) -> ResolvedAccount:
    """A resolved account on ``home``."""
    return ResolvedAccount(
        handle=Handle(name, "example.org"), home=home, remote_id=remote_id, display_name=name
    )


def sample(account_id: int, at: datetime, followers: int = 10) -> NewSample:
    """A sample with made-up counts."""
    return NewSample(account_id, at, followers, 5, 100, date(2026, 2, 28))


def never_alive(_run: RunRecord) -> bool:
    """Every other round's owner is dead."""
    return False


async def test_migrations_bring_a_new_database_to_head(db: Database) -> None:
    """Opening an empty database applies every migration."""
    assert await db.current_revision() == Database.head_revision()
    assert Database.head_revision() is not None


async def test_reopening_a_migrated_database_changes_nothing(
    db: Database, repo: Repository
) -> None:
    """A second open of the same database keeps the data and the revision."""
    account = await repo.add_account(resolved("alice"), T0)
    again = await Database.open(db.url)
    try:
        assert await again.current_revision() == Database.head_revision()
        assert (await Repository(again).get_account(account.id)).handle == account.handle
    finally:
        await again.close()


async def test_adding_an_account_twice_is_refused_whatever_the_case(repo: Repository) -> None:
    """The acct is unique case-insensitively; the second add raises AlreadyTracked."""
    await repo.add_account(resolved("Alice"), T0)
    with pytest.raises(AlreadyTracked, match=r"@alice@example\.org is already tracked"):
        await repo.add_account(resolved("alice"), T0)
    assert len(await repo.list_accounts()) == 1


async def test_account_keeps_its_fields_and_instance(repo: Repository) -> None:
    """Handle, remote id, home instance and state come back as stored."""
    account = await repo.add_account(resolved("alice", "109"), T0)
    fetched = await repo.find_account(Handle("ALICE", "Example.org".lower()))
    assert fetched == account
    assert account.remote_id == "109"
    assert account.home == HOME
    assert account.state is AccountState.ACTIVE
    assert account.added_at == T0
    instances = await repo.list_instances()
    assert [i.host for i in instances] == ["social.example"]


async def test_instance_with_port_and_http_round_trips(repo: Repository) -> None:
    """A server on a custom port and plain http keeps its address."""
    home = InstanceAddress("127.0.0.1", scheme="http", port=8080)
    account = await repo.add_account(resolved("bob", home=home), T0)
    assert account.home == home
    assert account.instance_host == "127.0.0.1:8080"


async def test_samples_round_trip_in_utc_and_ignore_repeats(repo: Repository) -> None:
    """Samples come back aware UTC, ordered; the same sample committed twice is stored once."""
    account = await repo.add_account(resolved("alice"), T0)
    run, _ = await repo.start_run(T0, "test", never_alive)
    batch = [sample(account.id, T0 + timedelta(days=1), 11), sample(account.id, T0, 10)]
    await repo.commit_batch(run.id, T0, RunProgress(accounts_measured=2), samples=batch)
    await repo.commit_batch(run.id, T0, RunProgress(accounts_measured=2), samples=batch)
    stored = await repo.samples(account.id)
    assert [(s.taken_at, s.followers) for s in stored] == [(T0, 10), (T0 + timedelta(days=1), 11)]
    assert all(s.taken_at.tzinfo is not None for s in stored)
    assert stored[0].last_status_at == date(2026, 2, 28)
    assert stored[0].run_id == run.id
    assert await repo.count_samples() == 2


async def test_samples_filter_by_since_and_until(repo: Repository) -> None:
    """since/until bound the samples inclusively."""
    account = await repo.add_account(resolved("alice"), T0)
    run, _ = await repo.start_run(T0, "test", never_alive)
    days = [T0 + timedelta(days=d) for d in range(5)]
    await repo.commit_batch(
        run.id, T0, RunProgress(), samples=[sample(account.id, d) for d in days]
    )
    got = await repo.samples(account.id, since=days[1], until=days[3])
    assert [s.taken_at for s in got] == days[1:4]


async def test_naive_datetimes_are_refused(repo: Repository) -> None:
    """A naive datetime never reaches the database (it would be ambiguous)."""
    with pytest.raises(StatementError, match="naive datetime"):
        await repo.add_account(resolved("alice"), datetime(2026, 1, 1))  # noqa: DTZ001


async def test_untrack_keeps_history_and_readding_resumes_it(repo: Repository) -> None:
    """Removing without purge keeps samples; adding again continues the same account."""
    account = await repo.add_account(resolved("alice"), T0)
    run, _ = await repo.start_run(T0, "test", never_alive)
    await repo.commit_batch(run.id, T0, RunProgress(), samples=[sample(account.id, T0)])
    await repo.untrack_account(account.id, T0)
    assert await repo.list_accounts() == []
    assert (await repo.get_account(account.id)).state is AccountState.UNTRACKED
    again = await repo.add_account(resolved("alice"), T0 + timedelta(days=3))
    assert again.id == account.id
    assert again.state is AccountState.ACTIVE
    assert len(await repo.samples(account.id)) == 1


async def test_delete_removes_the_account_and_its_history(repo: Repository) -> None:
    """Purging deletes the samples and failures too."""
    account = await repo.add_account(resolved("alice"), T0)
    run, _ = await repo.start_run(T0, "test", never_alive)
    await repo.commit_batch(
        run.id,
        T0,
        RunProgress(),
        samples=[sample(account.id, T0)],
        failures=[NewFailure(account.id, "unavailable", "down", T0)],
    )
    assert await repo.delete_account(account.id) == 1
    with pytest.raises(NotTracked):
        await repo.get_account(account.id)
    assert await repo.count_samples() == 0
    assert await repo.run_failures([run.id]) == []


async def test_failures_are_recorded_and_cleared_by_a_later_sample(repo: Repository) -> None:
    """A failure sets last_error and counts; the next sample clears them."""
    account = await repo.add_account(resolved("alice"), T0)
    run, _ = await repo.start_run(T0, "test", never_alive)
    failure = NewFailure(account.id, "unavailable", "server answered 503 4 times", T0)
    await repo.commit_batch(run.id, T0, RunProgress(accounts_failed=1), failures=[failure])
    failing = await repo.get_account(account.id)
    assert failing.last_error == "server answered 503 4 times"
    assert failing.last_error_code == "unavailable"
    assert failing.consecutive_failures == 1
    [recorded] = await repo.run_failures([run.id])
    assert recorded.handle == account.handle
    assert recorded.reason == failure.reason
    await repo.commit_batch(run.id, T0, RunProgress(), samples=[sample(account.id, T0)])
    healed = await repo.get_account(account.id)
    assert healed.last_error is None
    assert healed.consecutive_failures == 0


async def test_state_changes_take_accounts_out_of_rounds(repo: Repository) -> None:
    """Suspended and moved accounts are kept but no longer measured."""
    alice = await repo.add_account(resolved("alice", "1"), T0)
    bob = await repo.add_account(resolved("bob", "2"), T0)
    run, _ = await repo.start_run(T0, "test", never_alive)
    await repo.commit_batch(
        run.id,
        T0,
        RunProgress(),
        state_changes=[AccountStateChange(bob.id, AccountState.MOVED, T0, "bob@new.example")],
    )
    assert [a.id for a in await repo.accounts_to_measure(None)] == [alice.id]
    moved = await repo.get_account(bob.id)
    assert moved.state is AccountState.MOVED
    assert moved.moved_to == "bob@new.example"
    assert {a.handle.username for a, _ in await repo.list_accounts()} == {"alice", "bob"}


async def test_accounts_to_measure_skips_those_sampled_since(repo: Repository) -> None:
    """Only accounts without a sample at or after the cut-off are due."""
    alice = await repo.add_account(resolved("alice", "1"), T0)
    bob = await repo.add_account(resolved("bob", "2"), T0)
    run, _ = await repo.start_run(T0, "test", never_alive)
    await repo.commit_batch(run.id, T0, RunProgress(), samples=[sample(alice.id, T0)])
    assert [a.id for a in await repo.accounts_to_measure(T0)] == [bob.id]
    assert [a.id for a in await repo.accounts_to_measure(T0 + timedelta(seconds=1))] == [
        alice.id,
        bob.id,
    ]


async def test_list_accounts_gives_the_latest_sample(repo: Repository) -> None:
    """Each account is listed with its newest sample, or None."""
    alice = await repo.add_account(resolved("alice", "1"), T0)
    await repo.add_account(resolved("bob", "2"), T0)
    run, _ = await repo.start_run(T0, "test", never_alive)
    await repo.commit_batch(
        run.id,
        T0,
        RunProgress(),
        samples=[sample(alice.id, T0, 1), sample(alice.id, T0 + timedelta(days=2), 3)],
    )
    listed = {a.handle.username: s for a, s in await repo.list_accounts()}
    assert listed["bob"] is None
    latest = listed["alice"]
    assert latest is not None
    assert latest.followers == 3


async def test_list_account_records_is_list_accounts_without_samples(repo: Repository) -> None:
    """The same accounts in the same order, for every state filter, without the samples."""
    alice = await repo.add_account(resolved("alice", "1"), T0)
    bob = await repo.add_account(resolved("bob", "2"), T0)
    await repo.add_account(resolved("carol", "3"), T0)
    run, _ = await repo.start_run(T0, "test", never_alive)
    await repo.commit_batch(
        run.id,
        T0,
        RunProgress(),
        samples=[sample(alice.id, T0)],
        state_changes=[AccountStateChange(bob.id, AccountState.SUSPENDED, T0, None)],
    )
    await repo.untrack_account(alice.id, T0)
    for states in (None, [AccountState.ACTIVE], [AccountState.UNTRACKED], list(AccountState)):
        expected = [a for a, _ in await repo.list_accounts(states)]
        assert await repo.list_account_records(states) == expected
    assert [a.handle.username for a in await repo.list_account_records()] == ["bob", "carol"]


async def test_a_live_round_blocks_a_second_one(repo: Repository) -> None:
    """Starting a round while another runs with a live owner raises RoundInProgress."""
    first, _ = await repo.start_run(T0, "host:1", never_alive)
    with pytest.raises(RoundInProgress, match=f"round {first.id} is still running"):
        await repo.start_run(T0, "host:2", lambda run: run.id == first.id)
    runs = await repo.list_runs()
    assert [r.id for r in runs] == [first.id]


async def test_a_dead_round_is_marked_interrupted_and_resumed(repo: Repository) -> None:
    """A round whose owner died is interrupted; the next round resumes it, only once."""
    first, _ = await repo.start_run(T0, "host:1", never_alive)
    second, resumed = await repo.start_run(T0 + timedelta(minutes=5), "host:2", never_alive)
    assert resumed is not None
    assert resumed.id == first.id
    assert second.resumes_run_id == first.id
    assert (await repo.get_run(first.id)).status == "interrupted"
    await repo.finish_run(second.id, T0 + timedelta(minutes=6), RunProgress())
    _, again = await repo.start_run(T0 + timedelta(minutes=7), "host:3", never_alive)
    assert again is None


async def test_finish_run_stores_totals(repo: Repository) -> None:
    """A finished round keeps its figures and duration."""
    run, _ = await repo.start_run(T0, "host:1", never_alive)
    await repo.set_planned(run.id, 7)
    progress = RunProgress(accounts_measured=5, accounts_failed=2, requests=9, rate_limited=1)
    done = await repo.finish_run(run.id, T0 + timedelta(seconds=42), progress)
    assert done.status == "finished"
    assert done.accounts_planned == 7
    assert (done.accounts_measured, done.accounts_failed, done.requests) == (5, 2, 9)
    assert done.duration_seconds == 42


async def test_unreachable_database_is_a_storage_error() -> None:
    """A PostgreSQL URL with nothing listening gives one readable StorageError."""
    with pytest.raises(StorageError, match="cannot migrate postgresql"):
        await Database.open("postgresql+asyncpg://nobody:secret@127.0.0.1:9/none")


async def test_storage_error_hides_the_password() -> None:
    """The message names the database without its password."""
    with pytest.raises(StorageError) as caught:
        await Database.open("postgresql+asyncpg://nobody:secret@127.0.0.1:9/none")
    assert "secret" not in str(caught.value)


async def test_unwritable_sqlite_location_is_a_storage_error(tmp_path: Path) -> None:
    """An SQLite path under a file (not a folder) fails with a clear message."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="cannot"):
        await Database.open(f"sqlite+aiosqlite:///{blocker}/sub/db.sqlite3")


async def test_stream_samples_yields_every_row_in_order_in_chunks(repo: Repository) -> None:
    """5,000 samples come out in small chunks, by account handle then time, within the period."""
    bob = await repo.add_account(resolved("bob", "2"), T0)
    alice = await repo.add_account(resolved("alice", "1"), T0)
    run, _ = await repo.start_run(T0, "test", never_alive)
    for account in (bob, alice):
        batch = [sample(account.id, T0 + timedelta(minutes=m), m) for m in range(2500)]
        await repo.commit_batch(run.id, T0, RunProgress(), samples=batch)
    rows = [(h.username, s.followers) async for h, s in repo.stream_samples(chunk=100)]
    assert len(rows) == 5000
    assert rows[0] == ("alice", 0)
    assert rows[2499] == ("alice", 2499)
    assert rows[2500] == ("bob", 0)
    window = [
        s.followers
        async for _, s in repo.stream_samples(
            T0 + timedelta(minutes=10), T0 + timedelta(minutes=12)
        )
    ]
    assert window == [10, 11, 12, 10, 11, 12]


async def test_migrations_make_the_schema_the_code_declares(db: Database) -> None:
    """The tables, columns, indexes and keys that the migrations build are those of tables.py.

    Alembic's comparison of the migrated database with the declared metadata: a column added
    to one and not the other (or a forgotten index) shows here, on SQLite and PostgreSQL.
    """
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from fedimeter.storage.tables import metadata

    async with db.connect() as connection:
        differences = await connection.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True}), metadata
            )
        )
    assert differences == []
