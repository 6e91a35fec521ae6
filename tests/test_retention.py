"""Retention: old samples thinned to one a day and one a week, exactly, on both backends."""

from __future__ import annotations

import asyncio
import json
import random
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, func, insert, select
from typer.testing import CliRunner, Result

from fedimeter.cli import app
from fedimeter.config import Settings, load_settings
from fedimeter.domain.instance_report import InstanceLine
from fedimeter.domain.models import Handle, InstanceAddress, ResolvedAccount
from fedimeter.domain.retention import RetentionPolicy, period_start
from fedimeter.errors import ConfigError, InvalidInput
from fedimeter.reporting import make_report
from fedimeter.retention import downsample, downsample_after_round
from fedimeter.rounds import RoundManager
from fedimeter.simfedi import SimFediverse
from fedimeter.storage.database import Database
from fedimeter.storage.instances import InstanceStore
from fedimeter.storage.records import NewFailure, RunProgress
from fedimeter.storage.repository import Repository
from fedimeter.storage.tables import (
    account_samples,
    instance_activity,
    instance_samples,
    retention_marks,
    run_failures,
)
from simhelpers import sim_client, stored, track

#: A Friday. With the policy below, days before Tuesday 17 March keep one sample each and
#: weeks before Monday 9 March keep one each.
NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
POLICY = RetentionPolicy(daily_after_days=3, weekly_after_days=10)
DAILY_CUTOFF = datetime(2026, 3, 17, tzinfo=UTC)
WEEKLY_CUTOFF = datetime(2026, 3, 9, tzinfo=UTC)
HOME = InstanceAddress("social.example")
FIGURES = ("users", "statuses", "domains", "peers", "active_month", "active_halfyear")


def at(text: str) -> datetime:
    """A UTC moment from ``YYYY-MM-DD HH:MM:SS[.ffffff]``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# Each sample, and whether it survives POLICY at NOW: worked out by hand.
ALICE: list[tuple[str, bool]] = [
    # The week of Monday 23 February: one a week.
    ("2026-02-23 00:00:00", True),  # exactly the week's start: a report from then reads it
    ("2026-02-23 08:00:00", False),
    ("2026-02-25 23:59:59.999999", False),
    ("2026-03-01 23:59:59.999999", True),  # the week's last, a microsecond before it ends
    # The week of Monday 2 March.
    ("2026-03-02 00:00:00.000001", False),
    ("2026-03-03 06:00:00", False),
    ("2026-03-03 18:00:00", False),
    ("2026-03-07 12:00:00", True),  # the week's last; nothing on Sunday
    # Monday 9 to Monday 16 March: one a day.
    ("2026-03-09 00:00:00", True),  # exactly midnight
    ("2026-03-09 09:00:00", False),
    ("2026-03-09 23:59:59.999999", True),
    ("2026-03-10 00:00:00.000001", True),  # the day's only sample
    ("2026-03-13 01:00:00", False),  # after two days without any
    ("2026-03-13 02:00:00", False),
    ("2026-03-13 03:00:00", True),
    ("2026-03-16 22:00:00", False),
    ("2026-03-16 23:00:00", True),
    # From Tuesday 17 March: untouched.
    ("2026-03-17 00:00:00.000001", True),
    ("2026-03-17 10:00:00", True),
    ("2026-03-17 20:00:00", True),
    ("2026-03-20 11:00:00", True),
    ("2026-03-20 11:30:00", True),
]
# Bob has not been measured for weeks: everything is old, and his newest sample stays.
BOB: list[tuple[str, bool]] = [
    ("2026-02-10 10:00:00", False),
    ("2026-02-10 11:00:00", False),
    ("2026-02-11 09:00:00", True),
]
# (moment, up, users, statuses, active_month, kept): a period's last sample may be down or lack
# a count, so the last sample that gave each count (and the last one up) stays too.
INSTANCE: list[tuple[str, bool, int | None, int | None, int | None, bool]] = [
    ("2026-02-24 12:00:00", True, 80, 800, 10, True),
    # The week of 2 March ends down.
    ("2026-03-03 10:00:00", True, 90, 900, 11, False),
    ("2026-03-05 10:00:00", True, 95, 950, None, True),  # the week's last users
    ("2026-03-06 10:00:00", True, None, 960, 12, True),  # its last posts, active, up
    ("2026-03-07 10:00:00", False, None, None, None, True),  # its last
    # 10 March ends down too.
    ("2026-03-10 04:00:00", True, 99, 990, 13, False),
    ("2026-03-10 08:00:00", True, 100, 1000, 13, True),  # the day's last users and active
    ("2026-03-10 20:00:00", True, None, 1010, None, True),  # its last posts and up
    ("2026-03-10 23:00:00", False, None, None, None, True),
    ("2026-03-13 06:00:00", True, 110, 1100, 14, False),
    ("2026-03-13 18:00:00", True, 111, 1101, 14, True),
    ("2026-03-14 00:00:00", True, 112, 1110, 14, True),  # exactly midnight
    ("2026-03-14 12:00:00", True, 113, 1120, 14, True),
    ("2026-03-18 09:00:00", True, 120, 1200, 15, True),
    ("2026-03-20 09:00:00", True, 125, 1250, 15, True),
]


def resolved(name: str, remote_id: str) -> ResolvedAccount:
    """An account on HOME."""
    return ResolvedAccount(Handle(name, "example.org"), HOME, remote_id, name.title())


@dataclass(frozen=True)
class Seeded:
    """The ids of what ``seed`` stored."""

    alice: int
    bob: int
    carol: int
    instance: int


async def seed(db: Database) -> Seeded:
    """Alice, Bob and the instance with the samples above; Carol with none; activity rows."""
    repo = Repository(db)
    alice = await repo.add_account(resolved("alice", "1"), at("2026-02-01 00:00:00"))
    bob = await repo.add_account(resolved("bob", "2"), at("2026-02-01 00:00:00"))
    carol = await repo.add_account(resolved("carol", "3"), at("2026-02-01 00:00:00"))
    instance = await InstanceStore(db).track(HOME, at("2026-02-01 00:00:00"))
    rows = []
    for owner, history in ((alice.id, ALICE), (bob.id, BOB)):
        for i, (moment, _kept) in enumerate(history):
            rows.append(
                {
                    "account_id": owner,
                    "taken_at": at(moment),
                    "followers": 1000 + 7 * i * i,
                    "following": 50 + i % 3,
                    "statuses": 300 + 11 * i,
                    "last_status_at": at(moment).date() - timedelta(days=i % 2),
                    "run_id": None,
                }
            )
    instance_rows = [
        {
            "instance_id": instance.id,
            "taken_at": at(moment),
            "up": up,
            "software": "mastodon",
            "version": f"4.3.{i}",
            "users": users,
            "statuses": statuses,
            "domains": None,
            "peers": None,
            "active_month": active,
            "active_halfyear": None,
            "sources": "[]",
            "run_id": None,
        }
        for i, (moment, up, users, statuses, active, _kept) in enumerate(INSTANCE)
    ]
    weeks = [
        {
            "instance_id": instance.id,
            "week_start": date(2026, 2, 23) + timedelta(weeks=w),
            "statuses": 10 * w,
            "logins": w,
            "registrations": 1,
            "complete": True,
            "updated_at": NOW,
        }
        for w in range(3)
    ]
    async with db.begin() as conn:
        await conn.execute(insert(account_samples), rows)
        await conn.execute(insert(instance_samples), instance_rows)
        await conn.execute(insert(instance_activity), weeks)
    run, _ = await repo.start_run(at("2026-02-10 09:00:00"), "test", lambda _run: False)
    await repo.commit_batch(
        run.id,
        at("2026-02-10 09:00:00"),
        RunProgress(accounts_failed=1),
        failures=[NewFailure(carol.id, "gone", "not found", at("2026-02-10 09:00:00"))],
    )
    return Seeded(alice.id, bob.id, carol.id, instance.id)


async def sample_times(db: Database) -> dict[tuple[str, int], list[datetime]]:
    """Every stored sample's moment by (table, owner), oldest first."""
    found: dict[tuple[str, int], list[datetime]] = {}
    async with db.connect() as conn:
        for name, table, owner in (
            ("account", account_samples, account_samples.c.account_id),
            ("instance", instance_samples, instance_samples.c.instance_id),
        ):
            rows = await conn.execute(select(owner, table.c.taken_at).order_by(owner, "taken_at"))
            for owner_id, taken_at in rows:
                found.setdefault((name, owner_id), []).append(taken_at)
    return found


async def row_count(db: Database, table: Table) -> int:
    """Rows in ``table``."""
    async with db.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


def expected_times(seeded: Seeded) -> dict[tuple[str, int], list[datetime]]:
    """The survivors worked out by hand above."""
    return {
        ("account", seeded.alice): [at(m) for m, kept in ALICE if kept],
        ("account", seeded.bob): [at(m) for m, kept in BOB if kept],
        ("instance", seeded.instance): [at(row[0]) for row in INSTANCE if row[-1]],
    }


# -- what survives ---------------------------------------------------------------------------


async def test_survivors_are_exactly_the_ones_worked_out_by_hand(db: Database) -> None:
    """The last of each old day or week, an exact midnight, and the last with each count."""
    seeded = await seed(db)
    before = await sample_times(db)
    result = await downsample(db, POLICY, NOW)
    assert await sample_times(db) == expected_times(seeded)
    assert result.removed("account_samples") == sum(not kept for _m, kept in ALICE + BOB)
    assert result.removed("instance_samples") == sum(not row[-1] for row in INSTANCE)
    # Every sample from the daily cutoff on is untouched; the newest of each is there.
    after = await sample_times(db)
    for key, times in before.items():
        assert [t for t in times if t >= DAILY_CUTOFF] == [
            t for t in after[key] if t >= DAILY_CUTOFF
        ]
        assert after[key][-1] == times[-1]
    # The steps and their cutoffs, the weekly one first.
    assert [(s.table, s.period, s.before) for s in result.steps] == [
        ("account_samples", "week", WEEKLY_CUTOFF),
        ("account_samples", "day", DAILY_CUTOFF),
        ("instance_samples", "week", WEEKLY_CUTOFF),
        ("instance_samples", "day", DAILY_CUTOFF),
    ]


async def test_the_other_tables_are_left_alone(db: Database) -> None:
    """Weekly activity, failures and rounds are not samples: nothing of them goes."""
    await seed(db)
    counts = [await row_count(db, t) for t in (instance_activity, run_failures)]
    await downsample(db, POLICY, NOW)
    assert [await row_count(db, t) for t in (instance_activity, run_failures)] == counts
    assert counts == [3, 1]


async def test_a_dry_run_counts_exactly_what_a_real_run_removes(db: Database) -> None:
    """--dry-run's figures are the real ones, per table and step, and nothing goes."""
    await seed(db)
    before = await sample_times(db)
    dry = await downsample(db, POLICY, NOW, dry_run=True)
    assert dry.dry_run
    assert await sample_times(db) == before
    assert await row_count(db, retention_marks) == 0
    real = await downsample(db, POLICY, NOW)
    assert [s.rows for s in dry.steps] == [s.rows for s in real.steps]
    assert dry.total == real.total == 14


async def test_a_second_pass_changes_nothing(db: Database) -> None:
    """Downsampling is idempotent, from scratch and past the marks alike."""
    seeded = await seed(db)
    await downsample(db, POLICY, NOW)
    again = await downsample(db, POLICY, NOW)
    assert again.total == 0
    marked = await downsample(db, POLICY, NOW, incremental=True)
    assert marked.total == 0
    assert await sample_times(db) == expected_times(seeded)


async def test_only_the_daily_step_or_only_the_weekly_one(db: Database) -> None:
    """Either period works alone; the weekly one alone leaves recent days untouched."""
    seeded = await seed(db)
    weekly = RetentionPolicy(weekly_after_days=10)
    await downsample(db, weekly, NOW)
    times = await sample_times(db)
    alice = times[("account", seeded.alice)]
    assert [t for t in alice if t >= WEEKLY_CUTOFF] == [
        at(m) for m, _ in ALICE if at(m) >= WEEKLY_CUTOFF
    ]
    assert [t for t in alice if t < WEEKLY_CUTOFF] == [
        at(m) for m, kept in ALICE if kept and at(m) < WEEKLY_CUTOFF
    ]
    # Adding the daily step later thins the days between the two cutoffs, nothing else.
    await downsample(db, POLICY, NOW, incremental=True)
    assert await sample_times(db) == expected_times(seeded)


async def test_default_settings_remove_nothing(db: Database, settings: Settings) -> None:
    """Retention is off unless asked for: after a round and on demand, nothing goes."""
    await seed(db)
    before = await sample_times(db)
    assert settings.retention_daily_after_days is None
    assert settings.retention_weekly_after_days is None
    assert await downsample_after_round(settings, db, now=NOW) is None
    off = await downsample(db, RetentionPolicy(), NOW)
    assert (off.total, off.steps) == (0, ())
    assert await sample_times(db) == before
    assert await row_count(db, retention_marks) == 0


# -- reports read the same figures -----------------------------------------------------------


def _midnights(first: date, last: date) -> list[datetime]:
    days = (last - first).days
    return [
        datetime.combine(first + timedelta(days=d), time.min, tzinfo=UTC) for d in range(days + 1)
    ]


ReportFigures = tuple[list[tuple[Any, ...]], tuple[InstanceLine, ...]]


async def _report_figures(repo: Repository, since: datetime, until: datetime) -> ReportFigures:
    """What a report over the period says, without the trend and charts (fewer points)."""
    report = await make_report(repo, since=since, until=until, now=NOW)
    accounts = [
        (
            line.handle,
            line.measured_at,
            line.base_at,
            line.partial,
            line.followers,
            line.following,
            line.statuses,
            line.last_status_at,
            line.days_since_post,
            line.silent,
        )
        for line in report.accounts
    ]
    return accounts, report.instances


async def test_reports_between_whole_days_and_weeks_are_unchanged(repo: Repository) -> None:
    """Reports from a midnight to a day's end read the same samples and changes after.

    Where only weeks are left, from a Monday midnight to a Sunday's end.
    """
    await seed(repo.db)
    end = timedelta(microseconds=1)
    # Starts: Monday midnights where weeks are kept, every midnight where days are.
    starts = [at("2026-03-02 00:00:00"), *_midnights(date(2026, 3, 9), date(2026, 3, 20))]
    # Ends: the end of a Sunday where weeks are kept, of every day where days are; and now.
    ends = [
        at("2026-03-09 00:00:00") - end,
        *(m - end for m in _midnights(date(2026, 3, 10), date(2026, 3, 20))),
        NOW,
    ]
    periods = [(s, u) for s in starts for u in ends if s < u]
    assert len(periods) > 80
    before = [await _report_figures(repo, s, u) for s, u in periods]
    result = await downsample(repo.db, POLICY, NOW)
    assert result.total > 0
    after = [await _report_figures(repo, s, u) for s, u in periods]
    for period, old, new in zip(periods, before, after, strict=True):
        assert new == old, period
    # Not vacuous: the reports measure real changes.
    accounts, instances = before[0]
    assert isinstance(accounts, list)
    assert any(line[4] is not None and line[4].change for line in accounts)
    assert any(line.users is not None and line.users.change for line in instances)


# -- a model of the rule, and passes round after round ----------------------------------------


@dataclass(frozen=True)
class Row:
    """One sample as the model sees it."""

    owner: int
    taken_at: datetime
    up: bool = True
    figures: tuple[int | None, ...] = ()


def _start(moment: datetime, week: bool) -> datetime:
    day = moment.date() - timedelta(days=moment.weekday() if week else 0)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def model_survivors(
    rows: list[Row], now: datetime, daily: int | None, weekly: int | None
) -> set[tuple[int, datetime]]:
    """The rule of domain/retention.py, written out sample by sample."""
    day_cut = None if daily is None else _start(now - timedelta(days=daily), week=False)
    week_cut = None if weekly is None else _start(now - timedelta(days=weekly), week=True)
    kept = set()
    for row in rows:
        if week_cut is not None and row.taken_at < week_cut:
            start = _start(row.taken_at, week=True)
            length = timedelta(weeks=1)
        elif day_cut is not None and row.taken_at < day_cut:
            start = _start(row.taken_at, week=False)
            length = timedelta(days=1)
        else:
            kept.add((row.owner, row.taken_at))
            continue
        later = [
            r for r in rows if r.owner == row.owner and row.taken_at < r.taken_at < start + length
        ]
        needed = (
            row.taken_at == start
            or not later
            or (row.up and not any(r.up for r in later))
            or any(
                value is not None and all(r.figures[i] is None for r in later)
                for i, value in enumerate(row.figures)
            )
        )
        if needed:
            kept.add((row.owner, row.taken_at))
    return kept


def random_history(rng: random.Random, owners: list[int], *, instance: bool) -> list[Row]:
    """Up to five samples a day from 1 February to 20 March, at any microsecond.

    Whole days are missing, some samples are at exact midnights or a day's last microsecond,
    instances are down at times and miss counts.
    """
    rows = []
    for owner in owners:
        for day in range(47):
            midnight = datetime(2026, 2, 1, tzinfo=UTC) + timedelta(days=day)
            if rng.random() < 0.2:
                continue
            moments = {
                midnight + timedelta(microseconds=rng.randrange(86_400 * 10**6))
                for _ in range(rng.randrange(6))
            }
            if rng.random() < 0.15:
                moments.add(midnight)
            if rng.random() < 0.15:
                moments.add(midnight + timedelta(days=1, microseconds=-1))
            for moment in sorted(moments):
                if moment > NOW:
                    continue
                up = not instance or rng.random() > 0.2
                figures = (
                    tuple(
                        rng.randrange(1000) if up and rng.random() > 0.3 else None for _ in FIGURES
                    )
                    if instance
                    else ()
                )
                rows.append(Row(owner, moment, up, figures))
    return rows


async def test_passes_round_after_round_reach_what_one_pass_at_the_end_does(
    db: Database,
) -> None:
    """Day by day, samples stored then a pass past the marks: the model's survivors remain.

    A pass over everything at the end finds nothing left to remove.
    """
    rng = random.Random(20260320)
    repo = Repository(db)
    owners = [
        (await repo.add_account(resolved(f"user{i}", str(i)), NOW - timedelta(days=60))).id
        for i in range(4)
    ]
    instance = await InstanceStore(db).track(HOME, NOW - timedelta(days=60))
    accounts = random_history(rng, owners, instance=False)
    instances = random_history(rng, [instance.id], instance=True)
    passes = [datetime(2026, 2, 1, 23, 0, tzinfo=UTC) + timedelta(days=d) for d in range(47)]
    passes = [*(p for p in passes if p < NOW), NOW]
    previous = datetime(2026, 1, 1, tzinfo=UTC)
    for now in passes:
        async with db.begin() as conn:
            new = [r for r in accounts if previous < r.taken_at <= now]
            if new:
                await conn.execute(
                    insert(account_samples),
                    [
                        {
                            "account_id": r.owner,
                            "taken_at": r.taken_at,
                            "followers": 1,
                            "following": 1,
                            "statuses": 1,
                            "last_status_at": None,
                        }
                        for r in new
                    ],
                )
            new = [r for r in instances if previous < r.taken_at <= now]
            if new:
                await conn.execute(
                    insert(instance_samples),
                    [
                        {
                            "instance_id": r.owner,
                            "taken_at": r.taken_at,
                            "up": r.up,
                            "sources": "[]",
                            **dict(zip(FIGURES, r.figures, strict=True)),
                        }
                        for r in new
                    ],
                )
        await downsample(db, POLICY, now, incremental=True)
        previous = now
    times = await sample_times(db)
    stored_accounts = {(o, t) for (k, o), ts in times.items() if k == "account" for t in ts}
    stored_instances = {(o, t) for (k, o), ts in times.items() if k == "instance" for t in ts}
    assert stored_accounts == model_survivors(accounts, NOW, 3, 10)
    assert stored_instances == model_survivors(instances, NOW, 3, 10)
    assert len(stored_accounts) < len(accounts) / 2
    full = await downsample(db, POLICY, NOW)
    assert full.total == 0


# -- after rounds ----------------------------------------------------------------------------


async def test_rounds_thin_old_samples_when_retention_is_on(
    repo: Repository, settings: Settings
) -> None:
    """With retention_daily_after_days set, each finished round is followed by a pass."""
    keep = settings.model_copy(update={"retention_daily_after_days": 2})
    world = SimFediverse(seed=41)
    host = world.add_instance("social", version="4.3.0", rate_limit=None)
    alice = host.add_account("alice", followers=100, followers_per_day=24)
    async with world.serving(), sim_client(keep, world) as client:
        await track(repo, client, [alice])
        world.advance(minutes=1)  # no round at exactly midnight: one sample a day stays
        rounds = RoundManager(repo, client, keep, clock=lambda: world.now)
        for _ in range(6 * 4):
            result = await rounds.run()
            assert result.run.status == "finished"
            world.advance(hours=6)
        last = world.now - timedelta(hours=6)
    account = await stored(repo, alice)
    samples = await repo.samples(account.id)
    assert len(samples) < 6 * 4
    rows = [Row(account.id, s.taken_at) for s in samples]
    assert {(r.owner, r.taken_at) for r in rows} == model_survivors(rows, last, 2, None)
    cutoff = period_start(last - timedelta(days=2), "day")
    old_days = [s.taken_at.date() for s in samples if s.taken_at < cutoff]
    assert old_days
    assert len(old_days) == len(set(old_days))


# -- the policy and the settings -------------------------------------------------------------


def test_cutoffs_are_whole_days_and_weeks() -> None:
    """The cutoffs are the midnight, and the Monday midnight, at or before the ages."""
    assert POLICY.cutoffs(NOW) == {"week": WEEKLY_CUTOFF, "day": DAILY_CUTOFF}
    midnight = datetime(2026, 3, 16, tzinfo=UTC)  # a Monday
    assert RetentionPolicy(1, 7).cutoffs(midnight) == {
        "week": datetime(2026, 3, 9, tzinfo=UTC),
        "day": datetime(2026, 3, 15, tzinfo=UTC),
    }
    assert RetentionPolicy().cutoffs(NOW) == {}
    assert not RetentionPolicy().active


@pytest.mark.parametrize(("daily", "weekly"), [(30, 30), (30, 7), (0, None), (None, 0)])
def test_a_policy_that_cannot_work_is_refused(daily: int | None, weekly: int | None) -> None:
    """Under a day, or weekly not after daily, is invalid input with a reason."""
    with pytest.raises(InvalidInput, match="retention_"):
        RetentionPolicy(daily, weekly)


def test_settings_are_off_by_default_and_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both are unset by default; FEDIMETER_RETENTION_* set them."""
    defaults = load_settings()
    assert (defaults.retention_daily_after_days, defaults.retention_weekly_after_days) == (
        None,
        None,
    )
    monkeypatch.setenv("FEDIMETER_RETENTION_DAILY_AFTER_DAYS", "30")
    monkeypatch.setenv("FEDIMETER_RETENTION_WEEKLY_AFTER_DAYS", "365")
    settings = load_settings()
    assert (settings.retention_daily_after_days, settings.retention_weekly_after_days) == (30, 365)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"retention_daily_after_days": 30, "retention_weekly_after_days": 30},
            (
                "invalid setting retention_weekly_after_days: retention_weekly_after_days (30)"
                " must be more than retention_daily_after_days (30)"
            ),
        ),
        (
            {"retention_daily_after_days": 90, "retention_weekly_after_days": 30},
            "retention_weekly_after_days (30) must be more than retention_daily_after_days (90)",
        ),
        ({"retention_daily_after_days": 0}, "invalid setting retention_daily_after_days"),
        ({"retention_weekly_after_days": -1}, "invalid setting retention_weekly_after_days"),
    ],
)
def test_settings_that_cannot_work_are_refused(values: dict[str, Any], message: str) -> None:
    """A clear configuration error names the setting and says why."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(None, **values)


def test_a_weekly_age_alone_is_allowed() -> None:
    """Weeks may be thinned without days being thinned first."""
    assert load_settings(retention_weekly_after_days=7).retention_weekly_after_days == 7


# -- fedimeter db downsample -----------------------------------------------------------------


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An SQLite database seeded as above, named by FEDIMETER_DATABASE_URL; the CLI's now is NOW."""
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    monkeypatch.setenv("FEDIMETER_DATABASE_URL", url)
    monkeypatch.setattr("fedimeter.cli.retention.utc_now", lambda: NOW)

    async def go() -> None:
        db = await Database.open(load_settings().database_url)
        try:
            await seed(db)
        finally:
            await db.close()

    asyncio.run(go())
    return url


def invoke(*args: str, input_: str | None = None) -> Result:
    """Run ``fedimeter ARGS`` in-process."""
    return CliRunner().invoke(app, list(args), input=input_)


def stored_count() -> int:
    """Samples in the CLI's database."""

    async def go() -> int:
        db = await Database.open(load_settings().database_url)
        try:
            return await row_count(db, account_samples) + await row_count(db, instance_samples)
        finally:
            await db.close()

    return asyncio.run(go())


def test_downsample_with_retention_off_says_how_to_turn_it_on(cli_db: str) -> None:
    """Nothing configured and no ages given: exit 2, one line, nothing removed."""
    result = invoke("db", "downsample")
    assert result.exit_code == 2
    assert "retention_daily_after_days" in result.stderr
    assert stored_count() == len(ALICE) + len(BOB) + len(INSTANCE)


def test_downsample_dry_run_then_for_real_from_the_settings(
    cli_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--dry-run prints what would go per table and removes nothing; then it goes."""
    monkeypatch.setenv("FEDIMETER_RETENTION_DAILY_AFTER_DAYS", "3")
    monkeypatch.setenv("FEDIMETER_RETENTION_WEEKLY_AFTER_DAYS", "10")
    total = len(ALICE) + len(BOB) + len(INSTANCE)
    dry = invoke("db", "downsample", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would remove 11 account samples and 3 instance samples" in dry.output
    assert "2026-03-09 00:00 UTC" in dry.output
    assert stored_count() == total
    real = invoke("db", "downsample", "--json")
    assert real.exit_code == 0, real.output
    payload = json.loads(real.stdout)
    assert payload["removed"] == {"account_samples": 11, "instance_samples": 3}
    assert (payload["dry_run"], payload["total"]) == (False, 14)
    assert stored_count() == total - 14
    assert json.loads(invoke("db", "downsample", "--json").stdout)["total"] == 0


def test_downsample_with_other_ages_asks_first(cli_db: str) -> None:
    """Ages given on the command line show what would go and ask; --yes does not ask."""
    total = len(ALICE) + len(BOB) + len(INSTANCE)
    declined = invoke(
        "db", "downsample", "--daily-after", "3", "--weekly-after", "10", input_="n\n"
    )
    assert declined.exit_code == 1
    assert "Remove these 14 samples" in declined.output
    assert stored_count() == total
    scripted = invoke("db", "downsample", "--daily-after", "3", "--weekly-after", "10", "--json")
    assert scripted.exit_code == 2
    assert "--yes" in scripted.stderr
    done = invoke("db", "downsample", "--daily-after", "3", "--weekly-after", "10", "--yes")
    assert done.exit_code == 0, done.output
    assert "removed 11 account samples and 3 instance samples" in done.output
    assert stored_count() == total - 14


def test_downsample_refuses_ages_that_cannot_work(cli_db: str) -> None:
    """A weekly age not above the daily one is exit 2 with the reason."""
    result = invoke("db", "downsample", "--daily-after", "10", "--weekly-after", "3", "--dry-run")
    assert result.exit_code == 2
    assert "must be more than" in result.stderr


def test_collect_downsamples_after_its_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`fedimeter collect` thins old samples after the round and says how many went."""
    for name, value in {
        "FEDIMETER_DATABASE_URL": f"sqlite:///{tmp_path / 'collect.sqlite3'}",
        "FEDIMETER_ALLOW_PRIVATE_ADDRESSES": "true",
        "FEDIMETER_DEFAULT_SCHEME": "http",
        "FEDIMETER_RETENTION_DAILY_AFTER_DAYS": "2",
    }.items():
        monkeypatch.setenv(name, value)
    world = SimFediverse(seed=43)
    alice = world.add_instance("social", version="4.3.0", rate_limit=None).add_account("alice")
    with world.run_in_thread():
        assert invoke("track", "add", f"@{alice.acct}").exit_code == 0
        # Three samples a day, five to ten days ago (by the real clock, as collect's).
        today = datetime.now(UTC).date()
        old = [
            datetime.combine(today - timedelta(days=d), time(h), tzinfo=UTC)
            for d in range(5, 11)
            for h in (1, 9, 17)
        ]

        async def backdate() -> None:
            db = await Database.open(load_settings().database_url)
            try:
                (account,) = await Repository(db).list_account_records()
                async with db.begin() as conn:
                    await conn.execute(
                        insert(account_samples),
                        [
                            {
                                "account_id": account.id,
                                "taken_at": t,
                                "followers": 1,
                                "following": 1,
                                "statuses": 1,
                            }
                            for t in old
                        ],
                    )
            finally:
                await db.close()

        asyncio.run(backdate())
        text = invoke("collect")
        assert text.exit_code == 0, text.output
        assert (
            "Old samples downsampled (one sample a day after 2 days): removed 12 account samples"
            " and 0 instance samples"
        ) in text.stdout
        world.advance(hours=1)
        again = invoke("collect", "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["downsampled"] == {"account_samples": 0, "instance_samples": 0}
    assert stored_count() == len(old) - 12 + 2
