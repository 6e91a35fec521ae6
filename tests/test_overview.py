"""The dashboard's overview: changes over 1, 7 and 30 days, sorting, filtering, pages, caching."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from fedimeter.domain.models import AccountState, Handle, InstanceAddress, ResolvedAccount
from fedimeter.domain.overview import (
    PERIODS,
    SORT_KEYS,
    AccountRow,
    account_rows,
    baseline_moments,
    select_rows,
)
from fedimeter.overview import Overview
from fedimeter.storage.records import AccountRecord, NewSample, RunProgress, SampleRecord
from fedimeter.storage.repository import Repository

NOW = datetime(2026, 3, 31, 3, 0, 30, tzinfo=UTC)


def _account(i: int, host: str = "a.example", name: str = "", **extra: object) -> AccountRecord:
    values: dict[str, object] = {
        "id": i,
        "handle": Handle(f"user{i}", host),
        "instance_id": 1,
        "instance_host": host,
        "base_url": f"https://{host}",
        "remote_id": str(i),
        "display_name": name or f"User {i}",
        "url": "",
        "state": AccountState.ACTIVE,
        "moved_to": None,
        "added_at": NOW - timedelta(days=90),
        "state_changed_at": None,
        "last_error": None,
        "last_error_code": None,
        "last_error_at": None,
        "consecutive_failures": 0,
    }
    values.update(extra)
    return AccountRecord(**values)  # type: ignore[arg-type]


def _sample(account_id: int, at: datetime, followers: int) -> SampleRecord:
    return SampleRecord(account_id, at, followers, 10, 100 + followers, date(2026, 3, 30), None)


def test_changes_count_a_round_a_few_seconds_later_as_a_day_old() -> None:
    """Daily rounds drift by seconds: yesterday's sample is a day old, not two."""
    latest = _sample(1, NOW, 150)
    yesterday = _sample(1, NOW - timedelta(days=1) + timedelta(seconds=20), 140)
    week = _sample(1, NOW - timedelta(days=7), 100)
    moments = baseline_moments(NOW)
    assert yesterday.taken_at <= moments[1]
    (row,) = account_rows([(_account(1), latest)], {1: {1: yesterday}, 7: {1: week}, 30: {}})
    assert row.change(1) is not None
    assert row.change(1).followers == 10  # type: ignore[union-attr]
    assert row.change(1).statuses == 10  # type: ignore[union-attr]
    assert row.change(7).followers == 50  # type: ignore[union-attr]
    assert row.change(30) is None  # no sample that old: unknown, not zero


def test_no_change_is_shown_for_an_account_not_measured_since() -> None:
    """The older sample is the latest one (the account stopped answering): unknown."""
    old = _sample(1, NOW - timedelta(days=3), 100)
    (row,) = account_rows([(_account(1), old)], {1: {1: old}, 7: {}, 30: {}})
    assert row.change(1) is None
    (never,) = account_rows([(_account(2), None)], {1: {}, 7: {}, 30: {}})
    assert all(never.change(d) is None for d in PERIODS)


def _rows() -> list[AccountRow]:
    listing = [
        (_account(1, "a.example", "Alice"), _sample(1, NOW, 300)),
        (_account(2, "b.example", "Bob"), _sample(2, NOW, 100)),
        (_account(3, "a.example", "Carol"), None),
        (_account(4, "b.example", "Dan", consecutive_failures=3), _sample(4, NOW, 200)),
    ]
    week = {
        1: _sample(1, NOW - timedelta(days=7), 310),
        2: _sample(2, NOW - timedelta(days=7), 50),
    }
    return account_rows(listing, {1: {}, 7: week, 30: {}})


def test_sorting_puts_unknown_values_last_both_ways() -> None:
    """Accounts without a value for the key end the list, ascending or descending."""
    rows = _rows()
    down = select_rows(rows, sort="followers", descending=True).rows
    assert [r.account.id for r in down] == [1, 4, 2, 3]
    up = select_rows(rows, sort="followers", descending=False).rows
    assert [r.account.id for r in up] == [2, 4, 1, 3]
    change = select_rows(rows, sort="change_7", descending=True).rows
    assert [r.account.id for r in change] == [2, 1, 3, 4]  # +50, -10, then unknown by handle
    state = select_rows(rows, sort="state", descending=True).rows
    assert state[0].account.id == 4  # failing accounts first
    for key in SORT_KEYS:  # every key sorts without error
        assert len(select_rows(rows, sort=key).rows) == 4  # type: ignore[arg-type]


def test_filtering_by_text_and_server() -> None:
    """Text matches the handle or display name, any case; the server matches exactly."""
    rows = _rows()
    assert [r.account.id for r in select_rows(rows, text="CAROL").rows] == [3]
    assert [r.account.id for r in select_rows(rows, text="user2").rows] == [2]
    page = select_rows(rows, server="B.example", sort="account", descending=False)
    assert [r.account.id for r in page.rows] == [2, 4]
    assert (page.matched, page.total) == (2, 4)


@pytest.mark.parametrize(("asked", "shown"), [(0, 1), (1, 1), (2, 2), (3, 2), (99, 2)])
def test_pages_are_clamped(asked: int, shown: int) -> None:
    """A page out of range shows the nearest one."""
    page = select_rows(_rows(), page=asked, per_page=3)
    assert page.pages == 2
    assert page.page == shown
    assert len(page.rows) == (3 if shown == 1 else 1)


HOME = InstanceAddress("social.example")


async def _track(repo: Repository, name: str) -> AccountRecord:
    resolved = ResolvedAccount(
        handle=Handle(name, "example.org"), home=HOME, remote_id=name, display_name=name
    )
    return await repo.add_account(resolved, NOW - timedelta(days=60))


async def _store(repo: Repository, samples: list[NewSample]) -> None:
    run, _ = await repo.start_run(NOW - timedelta(days=60), "test:1", lambda _r: False)
    await repo.commit_batch(run.id, NOW, RunProgress(), samples=samples)
    await repo.finish_run(run.id, NOW, RunProgress())


async def test_samples_at_or_before_finds_each_accounts_newest_older_sample(
    repo: Repository,
) -> None:
    """One sample per account: the newest at or before the moment; none when there is none."""
    alice, bob, carol = [await _track(repo, n) for n in ("alice", "bob", "carol")]
    day = timedelta(days=1)
    await _store(
        repo,
        [
            NewSample(alice.id, NOW - 10 * day, 1, 1, 1, None),
            NewSample(alice.id, NOW - 5 * day, 2, 2, 2, None),
            NewSample(alice.id, NOW, 3, 3, 3, None),
            NewSample(bob.id, NOW - 2 * day, 7, 7, 7, None),
            NewSample(carol.id, NOW, 9, 9, 9, None),
        ],
    )
    found = await repo.samples_at_or_before(NOW - 3 * day)
    assert {k: v.followers for k, v in found.items()} == {alice.id: 2}
    found = await repo.samples_at_or_before(NOW - 2 * day)
    assert {k: v.followers for k, v in found.items()} == {alice.id: 2, bob.id: 7}
    assert found[bob.id].taken_at == NOW - 2 * day
    await repo.untrack_account(bob.id, NOW)
    assert bob.id not in await repo.samples_at_or_before(NOW)


async def test_the_overview_is_read_once_per_change(repo: Repository) -> None:
    """Pages reuse the rows until a round commits or an account is added or removed."""
    alice = await _track(repo, "alice")
    overview = Overview(repo, lambda: NOW)
    assert [r.handle for r in await overview.rows()] == ["alice@example.org"]
    await overview.rows()
    assert overview.builds == 1
    await _store(repo, [NewSample(alice.id, NOW, 5, 5, 5, None)])
    (row,) = await overview.rows()
    assert row.latest is not None
    assert row.latest.followers == 5
    assert overview.builds == 2
    await _track(repo, "bob")
    assert len(await overview.rows()) == 2
    await repo.untrack_account(alice.id, NOW)
    assert [r.handle for r in await overview.rows()] == ["bob@example.org"]
    assert overview.builds == 4
