"""Alert rules over simulated days, through the real storage on SQLite and PostgreSQL.

Each round is written as a collection round writes it (samples, failures with the accounts'
failure counts, instance samples up or down), then the alerts are checked as after a round.
Every rule must fire exactly once when it should, and never when it should not.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from deliveryhelpers import with_settings
from fedimeter.alerting import AlertRun, check_alerts, judge_alerts
from fedimeter.config import Settings
from fedimeter.domain.instances import InstanceFigures, InstanceMeasurement, SourceResult
from fedimeter.domain.models import Handle, InstanceAddress, ResolvedAccount
from fedimeter.storage.alerts import AlertStore
from fedimeter.storage.database import Database
from fedimeter.storage.instances import InstanceStore
from fedimeter.storage.records import NewFailure, NewSample, RunProgress
from fedimeter.storage.repository import Repository

DAY1 = datetime(2026, 4, 1, 3, 0, tzinfo=UTC)
ALICE = "@alice@example.social"


def at(day: int, hour: int = 3) -> datetime:
    """Round times: ``day`` 1 is 2026-04-01, at 03:00 by default."""
    return DAY1.replace(hour=hour) + timedelta(days=day - 1)


class Calendar:
    """Tracked accounts and instances, and rounds written into storage at chosen times."""

    def __init__(
        self, settings: Settings, db: Database, *rules: dict[str, Any], **values: object
    ) -> None:
        """Check ``rules`` after every round, with ``values`` added to the settings."""
        self.settings = with_settings(settings, alerts=list(rules), **values)
        self.db = db
        self.repo = Repository(db)
        self.instances = InstanceStore(db)
        self.fired: list[tuple[datetime, str]] = []

    async def account(self, acct: str) -> int:
        """Track ``acct`` (user@host); its id."""
        username, _, host = acct.partition("@")
        resolved = ResolvedAccount(Handle(username, host), InstanceAddress(host), remote_id="1")
        return (await self.repo.add_account(resolved, DAY1 - timedelta(days=30))).id

    async def instance(self, host: str) -> int:
        """Track the instance ``host``; its id."""
        return (await self.instances.track(InstanceAddress(host), DAY1 - timedelta(days=30))).id

    async def round(
        self,
        now: datetime,
        followers: dict[int, int | None] | None = None,
        users: dict[int, int | None] | None = None,
    ) -> AlertRun:
        """One finished round at ``now`` (None: not measured, or down), then the alert check."""
        run, _ = await self.repo.start_run(now, "test", lambda _run: False)
        measured = (followers or {}).items()
        await self.repo.commit_batch(
            run.id,
            now,
            RunProgress(),
            samples=[NewSample(a, now, f, 10, 100, None) for a, f in measured if f is not None],
            failures=[
                NewFailure(a, "unreachable", "example.social did not answer", now)
                for a, f in measured
                if f is None
            ],
        )
        for instance_id, count in (users or {}).items():
            await self.instances.store(instance_id, _measurement(now, count), run.id)
        await self.repo.finish_run(run.id, now, RunProgress())
        result = await check_alerts(self.settings, self.db, clock=lambda: now)
        self.fired += [(now, a.text) for a in result.fired]
        return result

    def fired_on(self) -> list[datetime]:
        """When each alert fired, in order."""
        return [when for when, _ in self.fired]


def _measurement(now: datetime, users: int | None) -> InstanceMeasurement:
    """An instance measured up with ``users``, or down (None)."""
    if users is None:
        sources = (SourceResult("nodeinfo", "failed", "connection refused"),)
        return InstanceMeasurement(now, None, None, None, InstanceFigures(), (), sources)
    return InstanceMeasurement(
        now,
        "mastodon",
        "4.3.0",
        None,
        InstanceFigures(users=users, statuses=users * 10),
        (),
        (SourceResult("nodeinfo", "ok"),),
    )


# -- drops ---------------------------------------------------------------------------------


async def test_a_followers_drop_fires_once_on_its_day(settings: Settings, db: Database) -> None:
    """-5.5 % reached at day 2's third round: told then only; day 4's -6.5 % told again."""
    days = Calendar(settings, db, {"kind": "drop", "percent": 5})
    alice = await days.account("alice@example.social")
    bob = await days.account("bob@example.social")
    await days.round(at(1), {alice: 1000, bob: 1000})
    for hour, value in [(3, 990), (9, 970), (15, 945), (21, 940)]:
        await days.round(at(2, hour), {alice: value, bob: 1000 - (1000 - value) // 2})
    await days.round(at(3), {alice: 931, bob: 960})
    await days.round(at(4), {alice: 870, bob: 951})
    assert days.fired == [
        (
            at(2, 15),
            "@alice@example.social lost 5.5% of their followers in a day: 1,000 \u2192 945",
        ),
        (at(4), "@alice@example.social lost 6.6% of their followers in a day: 931 \u2192 870"),
    ]
    assert await AlertStore(db).count() == 2


async def test_a_drop_just_under_the_limit_or_spread_over_days_is_quiet(
    settings: Settings, db: Database
) -> None:
    """-5.0% in a day, then -3 % on each of two days: nothing at all."""
    days = Calendar(settings, db, {"kind": "drop", "percent": 5})
    alice = await days.account("alice@example.social")
    for day, value in enumerate([1000, 950, 950, 922, 895, 895], start=1):
        await days.round(at(day), {alice: value})
    assert days.fired == []
    assert await AlertStore(db).count() == 0


# -- failing -------------------------------------------------------------------------------


async def test_a_failing_account_fires_once_per_streak(settings: Settings, db: Database) -> None:
    """Two failures then recovery: quiet. Four in a row: told at the third. A new streak: again."""
    days = Calendar(settings, db, {"kind": "failing", "rounds": 3})
    alice = await days.account("alice@example.social")
    outcomes = [1000, None, None, 1000, None, None, None, None, 1001, None, None, None]
    for index, value in enumerate(outcomes):
        await days.round(at(1 + index // 2, 3 + 12 * (index % 2)), {alice: value})
    assert days.fired == [
        (
            at(4),
            (
                "@alice@example.social could not be measured in 3 rounds in a row,"
                " since 2026-04-03 03:00 UTC: example.social did not answer"
            ),
        ),
        (
            at(6, 15),
            (
                "@alice@example.social could not be measured in 3 rounds in a row,"
                " since 2026-04-05 15:00 UTC: example.social did not answer"
            ),
        ),
    ]


async def test_a_failing_instance_fires_once_per_streak(settings: Settings, db: Database) -> None:
    """Down twice, up, down four times: told once, at the third down in a row."""
    days = Calendar(settings, db, {"kind": "failing", "scope": "instances", "rounds": 3})
    social = await days.instance("example.social")
    other = await days.instance("other.example")
    for day, users in enumerate([100, None, None, 100, None, None, None, None], start=1):
        await days.round(at(day), users={social: users, other: 50})
    assert days.fired == [
        (
            at(7),
            (
                "example.social answered none of its sources in 3 rounds in a row,"
                " since 2026-04-05 03:00 UTC: connection refused"
            ),
        )
    ]


# -- rises ---------------------------------------------------------------------------------


async def test_an_implausible_jump_of_users_fires_once(settings: Settings, db: Database) -> None:
    """+40 % is plausible, +57 % is not (told once), and a down day in between changes nothing."""
    days = Calendar(settings, db, {"kind": "rise", "scope": "instances", "percent": 50})
    social = await days.instance("example.social")
    for day, users in enumerate([1000, 1400, None, 2200, 2300], start=1):
        await days.round(at(day), users={social: users})
    await days.round(at(4, 9), users={social: 2250})
    assert days.fired == [
        (at(4), "example.social gained 57.1% more users since 2026-04-02: 1,400 \u2192 2,200")
    ]


# -- milestones ----------------------------------------------------------------------------


async def test_a_milestone_fires_once_even_when_crossed_again(
    settings: Settings, db: Database
) -> None:
    """990, 1,005 (told), 995, 1,010 (not again), and 999 for Bob never."""
    days = Calendar(settings, db, {"kind": "milestone", "values": [1000]})
    alice = await days.account("alice@example.social")
    bob = await days.account("bob@example.social")
    for day, (a, b) in enumerate([(990, 990), (1005, 999), (995, 999), (1010, 999)], start=1):
        await days.round(at(day), {alice: a, bob: b})
    assert days.fired == [(at(2), "@alice@example.social reached 1,000 followers (now 1,005)")]


async def test_round_number_milestones_over_days(settings: Settings, db: Database) -> None:
    """An account growing from 40: 50 and 100 are told on their days, each once."""
    days = Calendar(settings, db, {"kind": "milestone", "round_numbers": True})
    alice = await days.account("alice@example.social")
    for day, value in enumerate([40, 49, 51, 80, 99, 101, 103], start=1):
        await days.round(at(day), {alice: value})
    assert days.fired_on() == [at(3), at(6)]


# -- once, whoever checks --------------------------------------------------------------------


async def test_two_processes_checking_at_once_record_one_alert(
    settings: Settings, db: Database
) -> None:
    """Two checks at the same moment over two connections: one alert between them."""
    days = Calendar(settings, db, {"kind": "drop", "percent": 5})
    alice = await days.account("alice@example.social")
    await days.round(at(1), {alice: 1000})
    await days.round(at(2), {alice: 1000})
    days.settings = with_settings(settings)  # no rules: the rounds leave the checking to us
    sample = NewSample(alice, at(2, 9), 900, 10, 100, None)
    await days.repo.commit_batch(
        (await days.repo.list_runs(1))[0].id, at(2, 9), RunProgress(), samples=[sample]
    )
    ruled = with_settings(settings, alerts=[{"kind": "drop", "percent": 5}])
    other = await Database.open(settings.database_url)
    try:
        first, second = await asyncio.gather(
            check_alerts(ruled, db, clock=lambda: at(2, 9)),
            check_alerts(ruled, other, clock=lambda: at(2, 9)),
        )
    finally:
        await other.close()
    assert sorted([len(first.fired), len(second.fired)]) == [0, 1]
    assert await AlertStore(db).count() == 1


async def test_a_dry_run_shows_what_would_fire_and_records_nothing(
    settings: Settings, db: Database
) -> None:
    """judge_alerts finds the drop; nothing is stored until the check; then nothing is due."""
    days = Calendar(settings, db)
    alice = await days.account("alice@example.social")
    await days.round(at(1), {alice: 1000})
    await days.round(at(2), {alice: 900})
    ruled = with_settings(settings, alerts=[{"kind": "drop", "percent": 5}])
    [due] = await judge_alerts(ruled, db, now=at(2))
    assert due.text.startswith("@alice@example.social lost 10.0%")
    assert await AlertStore(db).count() == 0
    assert len((await check_alerts(ruled, db, clock=lambda: at(2))).fired) == 1
    assert await judge_alerts(ruled, db, now=at(2)) == []


async def test_untracked_accounts_are_not_watched(settings: Settings, db: Database) -> None:
    """An account no longer tracked can drop all it likes."""
    days = Calendar(settings, db, {"kind": "drop", "percent": 5})
    alice = await days.account("alice@example.social")
    await days.round(at(1), {alice: 1000})
    await days.repo.untrack_account(alice, at(1, 9))
    await days.round(at(2), {alice: 500})
    assert days.fired == []


async def test_each_failing_rule_counts_its_own_rounds(settings: Settings, db: Database) -> None:
    """Rules of 2 and 5 rounds: two failures in a row tell the first only, at the second."""
    days = Calendar(
        settings,
        db,
        {"kind": "failing", "rounds": 2, "name": "two"},
        {"kind": "failing", "rounds": 5, "name": "five"},
    )
    alice = await days.account("alice@example.social")
    for day, value in enumerate([1000, None, None, 1000], start=1):
        await days.round(at(day), {alice: value})
    assert days.fired == [
        (
            at(3),
            (
                "@alice@example.social could not be measured in 2 rounds in a row,"
                " since 2026-04-02 03:00 UTC: example.social did not answer"
            ),
        )
    ]


async def test_a_dry_run_after_a_failing_alert_shows_nothing_already_fired(
    settings: Settings, db: Database
) -> None:
    """A streak told at its third round: a dry run at the fourth has nothing new to show."""
    days = Calendar(settings, db, {"kind": "failing", "rounds": 3})
    alice = await days.account("alice@example.social")
    for day, value in enumerate([1000, None, None, None, None], start=1):
        await days.round(at(day), {alice: value})
    assert days.fired_on() == [at(4)]
    assert await judge_alerts(days.settings, db, now=at(5)) == []
