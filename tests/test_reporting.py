"""make_report over storage: what it reads, and that it leaves the process as it found it."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text

from fedimeter.domain.models import Handle, InstanceAddress, ResolvedAccount
from fedimeter.errors import StorageError
from fedimeter.reporting import make_report
from fedimeter.storage.instances import InstanceStore
from fedimeter.storage.records import NewSample, RunProgress
from fedimeter.storage.repository import Repository

T0 = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)


@pytest.fixture
def collector_on() -> Iterator[None]:
    """Start with the cycle collector on, and leave it on."""
    gc.enable()
    yield
    gc.enable()


async def seeded(repo: Repository) -> None:
    """Two accounts, one with three daily samples."""
    home = InstanceAddress("social.example")
    alice = await repo.add_account(
        ResolvedAccount(Handle("alice", "example.org"), home, "1", "Alice"), T0
    )
    await repo.add_account(ResolvedAccount(Handle("bob", "example.org"), home, "2", "Bob"), T0)
    run, _ = await repo.start_run(T0, "test", lambda _run: False)
    samples = [
        NewSample(alice.id, T0 + timedelta(days=d), 100 + 10 * d, 5, 50 + d, date(2026, 3, 1))
        for d in range(3)
    ]
    await repo.commit_batch(run.id, T0, RunProgress(), samples=samples)


async def test_report_reads_every_tracked_account(repo: Repository, collector_on: None) -> None:
    """All accounts are in the report, with the changes their samples give."""
    await seeded(repo)
    until = T0 + timedelta(days=2)
    report = await make_report(repo, since=T0, until=until, now=until)
    lines = {line.handle: line for line in report.accounts}
    assert set(lines) == {"alice@example.org", "bob@example.org"}
    followers = lines["alice@example.org"].followers
    assert followers is not None
    assert (followers.start, followers.current, followers.change) == (100, 120, 20)
    assert not lines["bob@example.org"].has_data


async def test_the_collector_runs_again_after_a_report(
    repo: Repository, collector_on: None
) -> None:
    """The cycle collector, paused while a report is built, is on again afterwards."""
    await seeded(repo)
    await make_report(repo, since=T0, until=T0 + timedelta(days=2), now=T0 + timedelta(days=2))
    assert gc.isenabled()


async def test_only_reports_over_many_accounts_pause_the_collector(
    repo: Repository, collector_on: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A report on a few accounts (the API's everyday call) leaves the collector alone."""
    await seeded(repo)
    paused: list[bool] = []
    monkeypatch.setattr(gc, "disable", lambda: paused.append(True))
    until = T0 + timedelta(days=2)
    chosen = (await repo.list_account_records())[:1]
    await make_report(repo, since=T0, until=until, now=until, accounts=chosen)
    assert paused == []
    await make_report(repo, since=T0, until=until, now=until)  # every account: paused
    assert paused == [True]


async def test_the_collector_runs_again_after_a_failed_report(
    repo: Repository, collector_on: None
) -> None:
    """A database error while reading does not leave the collector paused."""
    await seeded(repo)
    async with repo.db.begin() as conn:
        await conn.execute(text("ALTER TABLE account_samples RENAME TO samples_gone"))
    with pytest.raises(StorageError):
        await make_report(repo, since=T0, until=T0 + timedelta(days=1), now=T0)
    assert gc.isenabled()


async def test_a_collector_paused_by_someone_else_stays_paused(
    repo: Repository, collector_on: None
) -> None:
    """make_report does not turn on a collector it did not turn off."""
    await seeded(repo)
    gc.disable()
    await make_report(repo, since=T0, until=T0 + timedelta(days=1), now=T0)
    assert not gc.isenabled()


class _Cycle:
    """An object that refers to itself: only the cycle collector frees it."""

    def __init__(self) -> None:
        self.me = self


async def test_cycles_made_during_a_report_are_still_collected(
    repo: Repository, collector_on: None
) -> None:
    """What the report's pause moved to the oldest generation is collected there, not frozen."""
    await seeded(repo)
    gc.collect()
    before = gc.get_freeze_count()
    cycle = _Cycle()
    await make_report(repo, since=T0, until=T0 + timedelta(days=1), now=T0)
    assert gc.get_freeze_count() == before
    assert gc.is_tracked(cycle)
    del cycle
    assert gc.collect() >= 1


async def test_objects_frozen_by_someone_else_stay_frozen(
    repo: Repository, collector_on: None
) -> None:
    """A process that froze its objects (before forking, say) finds them frozen still."""
    await seeded(repo)
    kept = _Cycle()
    gc.freeze()
    try:
        await make_report(repo, since=T0, until=T0 + timedelta(days=1), now=T0)
        assert gc.isenabled()
        # Frozen objects are in no generation; the report made nothing frozen of its own.
        assert gc.get_freeze_count() > 0
        assert not any(o is kept for o in gc.get_objects())
    finally:
        gc.unfreeze()
    assert any(o is kept for o in gc.get_objects())


async def test_a_report_on_every_account_lists_the_tracked_instances(
    repo: Repository, collector_on: None
) -> None:
    """make_report adds instance lines when no account is chosen, none when some are."""
    from fedimeter.domain.instances import InstanceFigures, InstanceMeasurement, SourceResult

    store = InstanceStore(repo.db)
    instance = await store.track(InstanceAddress("social.example"), T0)
    for days, users in ((0, 100), (2, 130)):
        await store.store(
            instance.id,
            InstanceMeasurement(
                taken_at=T0 + timedelta(days=days),
                software="mastodon",
                version="4.3.2",
                open_registrations=None,
                figures=InstanceFigures(users=users, statuses=1_000 + days),
                weeks=(),
                sources=(SourceResult("nodeinfo", "ok"),),
            ),
        )
    until = T0 + timedelta(days=2)
    report = await make_report(repo, since=T0, until=until, now=until)
    (line,) = report.instances
    assert line.host == "social.example"
    assert line.users is not None
    assert (line.users.start, line.users.current) == (100, 130)
    chosen = await make_report(repo, since=T0, until=until, now=until, accounts=[])
    assert chosen.instances == ()
