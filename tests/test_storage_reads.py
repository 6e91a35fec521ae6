"""The read paths a report takes: timestamps parsed from SQLite's text, and ``histories``."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sqlalchemy import insert

from fedimeter.domain.models import Handle, InstanceAddress, ResolvedAccount
from fedimeter.storage.records import SampleRecord
from fedimeter.storage.repository import Repository
from fedimeter.storage.tables import _utc_from_text, account_samples

T0 = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)
HOME = InstanceAddress("social.example")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-04-01 03:12:45.123456", datetime(2026, 4, 1, 3, 12, 45, 123456, tzinfo=UTC)),
        ("2026-04-01 03:12:45.000000", datetime(2026, 4, 1, 3, 12, 45, tzinfo=UTC)),
        ("2026-04-01 03:12:45", datetime(2026, 4, 1, 3, 12, 45, tzinfo=UTC)),
        ("2026-04-01T03:12:45.5", datetime(2026, 4, 1, 3, 12, 45, 500000, tzinfo=UTC)),
        # Text with an offset (never written by fedimeter) is converted to UTC.
        ("2026-04-01 05:12:45.000001+02:00", datetime(2026, 4, 1, 3, 12, 45, 1, tzinfo=UTC)),
        ("2026-04-01 03:12:45Z", datetime(2026, 4, 1, 3, 12, 45, tzinfo=UTC)),
    ],
)
def test_sqlite_text_becomes_an_aware_utc_datetime(text: str, expected: datetime) -> None:
    """Naive text is UTC; microseconds are kept; the result's zone is UTC itself."""
    got = _utc_from_text(text)
    assert got == expected
    assert got is not None
    assert got.tzinfo is UTC


def test_sqlite_text_parser_passes_none_and_refuses_garbage() -> None:
    """NULL stays None; text that is no date is an error, as SQLAlchemy's parser made it."""
    assert _utc_from_text(None) is None
    with pytest.raises(ValueError, match="Invalid isoformat"):
        _utc_from_text("yesterday")


def test_sqlite_datetimes_from_a_driver_are_made_utc() -> None:
    """A driver set to parse dates itself gives datetimes: naive is UTC, aware is converted."""
    naive = datetime(2026, 4, 1, 3, 12, 45, 7)  # noqa: DTZ001 - as SQLite stores it
    assert _utc_from_text(naive) == naive.replace(tzinfo=UTC)
    aware = datetime(2026, 4, 1, 5, 12, 45, 7, tzinfo=timezone(timedelta(hours=2)))
    converted = _utc_from_text(aware)
    assert converted == aware
    assert converted is not None
    assert converted.tzinfo is UTC


async def _account(repo: Repository, name: str) -> int:
    resolved = ResolvedAccount(
        handle=Handle(name, "example.org"), home=HOME, remote_id=name, display_name=name
    )
    return (await repo.add_account(resolved, T0)).id


async def _store(repo: Repository, account_id: int, *moments: datetime) -> list[SampleRecord]:
    """Samples at ``moments`` (followers counting up), written straight into the table."""
    records = [
        SampleRecord(
            account_id=account_id,
            taken_at=moment,
            followers=100 + index,
            following=5,
            statuses=7,
            last_status_at=date(2026, 2, 28) if index % 2 else None,
            run_id=None,
        )
        for index, moment in enumerate(moments)
    ]
    async with repo.db.begin() as conn:
        await conn.execute(insert(account_samples), [dataclasses.asdict(r) for r in records])
    return records


async def test_times_with_microseconds_and_offsets_round_trip(repo: Repository) -> None:
    """An aware time in any zone comes back equal, with its microseconds, in UTC."""
    account = await _account(repo, "alice")
    plus_two = timezone(timedelta(hours=2))
    moments = [
        datetime(2026, 3, 1, 5, 0, 0, 123456, tzinfo=plus_two),
        datetime(2026, 3, 2, 3, 0, 0, 1, tzinfo=UTC),
        datetime(2026, 3, 3, 3, 0, tzinfo=UTC),
    ]
    await _store(repo, account, *moments)
    for got in (
        await repo.samples(account),
        (await repo.histories([account], T0 - timedelta(days=1), T0 + timedelta(days=5)))[account],
    ):
        assert [s.taken_at for s in got] == moments
        assert all(s.taken_at.tzinfo is UTC for s in got)
        assert got[0].taken_at == datetime(2026, 3, 1, 3, 0, 0, 123456, tzinfo=UTC)


async def test_histories_reads_the_window_and_the_last_sample_before(repo: Repository) -> None:
    """Per account, oldest first: its last sample before since, then those up to until."""
    days = [T0 + timedelta(days=d) for d in range(10)]
    old = await _account(repo, "old")
    stored = await _store(repo, old, *days)
    late = await _account(repo, "late")  # first measured inside the period
    late_stored = await _store(repo, late, days[6], days[8])
    await _account(repo, "never")  # no samples: no entry
    since, until = days[5] + timedelta(hours=1), days[8]
    got = await repo.histories(None, since, until)
    assert got == {old: stored[5:9], late: late_stored}
    # The window's bounds are inclusive; a sample at since is not a "before" one.
    assert (await repo.histories([old], days[5], days[7]))[old] == stored[4:8]


async def test_histories_chooses_accounts(repo: Repository) -> None:
    """None is every account but the untracked; named accounts are read whatever their state."""
    kept = await _account(repo, "kept")
    gone = await _account(repo, "gone")
    kept_stored = await _store(repo, kept, T0, T0 + timedelta(days=1))
    gone_stored = await _store(repo, gone, T0, T0 + timedelta(days=1))
    await repo.untrack_account(gone, T0)
    since, until = T0 + timedelta(hours=1), T0 + timedelta(days=2)
    assert await repo.histories(None, since, until) == {kept: kept_stored}
    assert await repo.histories([gone], since, until) == {gone: gone_stored}
    assert await repo.histories([], since, until) == {}


async def test_histories_with_since_after_until_gives_the_sample_before(
    repo: Repository,
) -> None:
    """An empty window still reads each account's last sample before since, as it always did."""
    account = await _account(repo, "alice")
    stored = await _store(repo, account, *(T0 + timedelta(days=d) for d in range(5)))
    got = await repo.histories(None, T0 + timedelta(days=3, hours=1), T0 + timedelta(days=1))
    assert got == {account: [stored[3]]}
