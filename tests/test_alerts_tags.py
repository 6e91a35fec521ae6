"""Alert rules on hashtags (``scope = "tags"``): judged by complete UTC days.

First by hand-made days (pure), then over simulated days through the real storage on SQLite
and PostgreSQL: the tag's answers stored as a round stores them (seven days, the newest in
progress), failures recorded as a round records them, the alerts checked after each round.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from deliveryhelpers import with_settings
from fedimeter.alerting import check_alerts
from fedimeter.config import Settings
from fedimeter.delivery.alerts import post_line
from fedimeter.domain.alert_rules import AlertRule, parse_rules
from fedimeter.domain.alerts import (
    DayCount,
    Fired,
    Observation,
    Occurrence,
    Streak,
    Subject,
    Watched,
    WatchedDays,
    evaluate,
)
from fedimeter.domain.models import InstanceAddress
from fedimeter.domain.tags import TagDay, TagReading, parse_tag_name
from fedimeter.storage.alerts import AlertStore
from fedimeter.storage.database import Database
from fedimeter.storage.tags import TagRecord, TagStore

DAY0 = date(2026, 12, 1)
CAT = Subject("tags", "caturday@mastodon.social", "#Caturday on mastodon.social")
CAT_FOSS = Subject("tags", "caturday@fosstodon.org", "#caturday on fosstodon.org")
TIPS = Subject("tags", "feditips@mastodon.social", "#FediTips on mastodon.social")
ALICE = Subject("accounts", "alice@mastodon.social", "@alice@mastodon.social")


def rule(**keys: Any) -> AlertRule:
    """One rule on tags, parsed as the settings parse it."""
    return parse_rules([{"scope": "tags", **keys}])[0]


def day(n: int) -> date:
    """Day ``n``: 0 is 2026-12-01."""
    return DAY0 + timedelta(days=n)


def at(n: int, hour: int = 3, minute: int = 5) -> datetime:
    """``hour`` o'clock UTC on day ``n``."""
    return datetime(day(n).year, day(n).month, day(n).day, hour, minute, tzinfo=UTC)


def tag(
    uses: Sequence[int | None],
    *,
    today: int | None = 0,
    subject: Subject = CAT,
    incomplete: Sequence[int] = (),
    peaks: dict[str, int] | None = None,
) -> WatchedDays:
    """Days 0, 1, ... complete with ``uses`` (None: never read), then the day in progress.

    Accounts are a third of the uses. ``incomplete`` marks days read only while in progress.
    """
    days = [
        DayCount(day(n), {"uses": u, "accounts": u // 3}, complete=n not in incomplete)
        for n, u in enumerate(uses)
        if u is not None
    ]
    if today is not None:
        days.append(DayCount(day(len(uses)), {"uses": today, "accounts": today}, complete=False))
    return WatchedDays(subject, days, peaks or {})


def judge(
    the_rule: AlertRule, item: WatchedDays, now: datetime | None = None, fired: Fired | None = None
) -> list[Occurrence]:
    """What ``the_rule`` finds in ``item`` at ``now``.

    By default at 03:05 on its day in progress, or the day after its newest day without one.
    """
    if now is None:
        newest = max(item.days, key=lambda d: d.day)
        now = at((newest.day - DAY0).days + (1 if newest.complete else 0))
    return evaluate([the_rule], [item], [], fired or Fired(), now)


def day_by_day(the_rule: AlertRule, uses: Sequence[int], rounds: Sequence[int] = (3,)) -> list[int]:
    """Feed one more complete day at a time, judging at ``rounds`` hours of the next day.

    Returns the days (as judged, the newest complete) that fired; memory as storage keeps it.
    """
    fired_days: set[date] = set()
    milestones: dict[tuple[str, str], int] = {}
    told: list[int] = []
    for n in range(1, len(uses) + 1):
        item = tag(uses[:n], today=1)
        for hour in rounds:
            memory = Fired(
                days={(the_rule.name, CAT.ref): frozenset(fired_days)}, milestones=milestones
            )
            for occurrence in evaluate([the_rule], [item], [], memory, at(n, hour)):
                told.append(n - 1)
                if occurrence.kind == "milestone":
                    milestones[(the_rule.name, CAT.ref)] = int(occurrence.key)
                else:
                    fired_days.add(date.fromisoformat(occurrence.key))
    return told


# -- rules ---------------------------------------------------------------------------------


def test_a_tag_rule_reads_like_any_other() -> None:
    """scope = "tags": uses by default, names built from the keys, only normalised."""
    drop = rule(kind="drop", percent=50)
    assert (drop.metric, drop.name) == ("uses", "drop-tags-uses-50%-1d")
    picked = rule(
        kind="milestone",
        metric="accounts",
        values=[100],
        only=[
            "#CatURDAY",
            "feditips",
            "#FediTips@Mastodon.Social",
            "#caturday on https://FOSStodon.org/",
            "Example.Social",
            "\uff03Café",
            "localhost",  # a bare word is a tag: a host without a dot needs its port or scheme
            "localhost:3000",
            "https://localhost",
        ],
    )
    assert picked.metric == "accounts"
    assert picked.only == (
        "#caturday",
        "#feditips",
        "feditips@mastodon.social",
        "caturday@fosstodon.org",
        "example.social",
        "#cafe",
        "#localhost",
        "localhost:3000",
        "localhost",
    )


def test_only_picks_tags_by_name_by_tag_on_an_instance_or_by_instance() -> None:
    """#caturday anywhere; #caturday@fosstodon.org there only; mastodon.social every tag."""
    subjects = [CAT, CAT_FOSS, TIPS]

    def picked(*only: str) -> list[Subject]:
        the_rule = rule(kind="failing", rounds=1, only=list(only))
        streaks = [Streak(s, 1, at(0)) for s in [*subjects, ALICE]]
        return [o.subject for o in evaluate([the_rule], [], streaks, Fired(), at(1))]

    assert picked() == subjects
    assert picked("#CATURDAY") == [CAT, CAT_FOSS]
    assert picked("Caturday@FOSStodon.org") == [CAT_FOSS]
    assert picked("#caturday on mastodon.social") == [CAT]
    assert picked("mastodon.social") == [CAT, TIPS]
    assert picked("#dogurday", "fosstodon.org") == [CAT_FOSS]


def test_a_tag_rule_ignores_accounts_and_an_account_rule_ignores_tags() -> None:
    """Each rule judges its own scope, even where the figures' names would fit."""
    both = {"followers": 1000, "uses": 1000}
    account = Watched(ALICE, [Observation(at(1), both), Observation(at(2), both)])
    falling = tag([100, 100, 10])
    tags_rule = rule(kind="drop", percent=50)
    followers_rule = parse_rules([{"kind": "drop", "percent": 50}])[0]
    fell = {"followers": 10, "uses": 10}
    account = Watched(ALICE, [Observation(at(1), both), Observation(at(2, 9), fell)])
    days = [
        DayCount(d.day, {**d.values, "followers": d.values["uses"]}, d.complete)
        for d in falling.days
    ]
    falling = WatchedDays(CAT, days)
    found = evaluate([tags_rule, followers_rule], [account, falling], [], Fired(), at(3))
    assert [(o.rule, o.subject) for o in found] == [
        (tags_rule.name, CAT),
        (followers_rule.name, ALICE),
    ]


# -- drop and rise -------------------------------------------------------------------------


def test_a_rise_of_a_day_fires_with_one_clear_line() -> None:
    """147 uses, then 412: up 180.3 %, keyed by the day judged, the newest complete one."""
    [found] = judge(rule(kind="rise", percent=100), tag([150, 147, 412], today=30))
    assert found.text == (
        "#Caturday on mastodon.social: 412 uses on 2026-12-03, up 180.3% from 147 the day before"
    )
    assert found.key == "2026-12-03"
    assert found.subject.ref == "tag:caturday@mastodon.social"
    assert found.details == {
        "metric": "uses",
        "before": 147,
        "after": 412,
        "change": 265,
        "percent": 180.3,
        "since": "2026-12-02",
        "day": "2026-12-03",
        "window_days": 1,
    }


@pytest.mark.parametrize(("after", "fires"), [(50, False), (51, False), (49, True)])
def test_a_drop_must_be_more_than_the_percentage(after: int, fires: bool) -> None:
    """100 to 50 is exactly 50 %, not more; 49 is."""
    found = judge(rule(kind="drop", percent=50), tag([100, after]))
    assert bool(found) is fires
    if fires:
        assert found[0].text == (
            "#Caturday on mastodon.social: 49 uses on 2026-12-02, down 51.0% from 100 the day"
            " before"
        )


def test_a_week_against_the_week_before() -> None:
    """Sums of 7 days: 700 then 406 is down 42.0 %; told in the words of a week."""
    [found] = judge(rule(kind="drop", percent=40, window="7d"), tag([100] * 7 + [58] * 7))
    assert found.text == (
        "#Caturday on mastodon.social: 406 uses in the 7 days to 2026-12-14, down 42.0% from"
        " 700 in the 7 days before"
    )
    assert (found.details["since"], found.details["window_days"]) == ("2026-12-01", 7)


def test_a_day_never_read_inside_the_windows_means_no_comparison() -> None:
    """One day of the fourteen missing, or read only in progress: nothing, never a zero."""
    week = rule(kind="drop", percent=40, window="7d")
    falling = [100] * 7 + [58] * 7
    assert judge(week, tag(falling)) != []
    for missing in (0, 6, 7, 13):
        gap: list[int | None] = list(falling)
        gap[missing] = None
        assert judge(week, tag(gap)) == [], missing
        assert judge(week, tag(falling, incomplete=[missing])) == [], missing
    # A gap before the fourteen days does not matter.
    assert judge(week, tag([None, *falling])) != []


def test_the_day_in_progress_never_makes_a_drop() -> None:
    """100 uses a day, 2 so far today: no drop, at any hour; the same 2 for a whole day is."""
    the_rule = rule(kind="drop", percent=50)
    for hour in (0, 1, 12, 23):
        assert judge(the_rule, tag([100, 100], today=2), at(2, hour, 0)) == [], hour
    assert judge(the_rule, tag([100, 100, 2], today=None), at(3, 1)) != []


def test_only_a_fresh_day_is_judged() -> None:
    """The newest complete day is judged the day after; not two days later (not read today)."""
    item = tag([100, 40], today=None)
    assert judge(item=item, the_rule=rule(kind="drop", percent=50), now=at(2, 23, 59)) != []
    assert judge(item=item, the_rule=rule(kind="drop", percent=50), now=at(3, 0, 1)) == []


def test_several_rounds_a_day_tell_a_day_once_and_the_next_day_again() -> None:
    """Rounds at 3, 9, 15 and 21 h: 100, 250, 700 tells days 1 and 2 once each."""
    the_rule = rule(kind="rise", percent=100)
    assert day_by_day(the_rule, [100, 250, 700], rounds=(3, 9, 15, 21)) == [1, 2]


def test_a_week_window_stays_quiet_for_a_week_after_it_fired() -> None:
    """A steady fall: told as soon as two weeks are known, then again a week later."""
    falling = [1000 - 40 * n for n in range(24)]
    assert day_by_day(rule(kind="drop", percent=20, window="1w"), falling) == [13, 20]


def test_percent_and_count_together_and_a_rise_from_nothing() -> None:
    """count = 10 keeps 3 to 9 quiet (200%); a rise from 0 needs a count and says so."""
    both = rule(kind="rise", percent=50, count=10)
    assert judge(both, tag([3, 9])) == []
    assert judge(both, tag([3, 14])) != []
    assert judge(rule(kind="rise", percent=50), tag([0, 40])) == []
    [found] = judge(rule(kind="rise", count=10), tag([0, 40]))
    assert found.text == (
        "#Caturday on mastodon.social: 40 uses on 2026-12-02, up from 0 the day before"
    )


def test_accounts_using_a_tag() -> None:
    """metric = "accounts": the accounts that used it, a day."""
    [found] = judge(rule(kind="rise", metric="accounts", percent=40), tag([120, 174]))
    assert found.text == (
        "#Caturday on mastodon.social: 58 accounts using it on 2026-12-02, up 45.0% from 40 the"
        " day before"
    )


# -- milestone -----------------------------------------------------------------------------


def test_a_day_reaching_a_milestone_for_the_first_time() -> None:
    """60, 80, then 120 uses: the first day with 100 or more."""
    [found] = judge(rule(kind="milestone", values=[100, 500]), tag([60, 80, 120]))
    assert found.text == (
        "#Caturday on mastodon.social reached 100 uses in a day: 120 on 2026-12-03"
        " (the most before: 80)"
    )
    assert (found.key, found.details["before"]) == ("100", 80)


def test_a_milestone_reached_before_is_not_reached_again() -> None:
    """A day of 150 stored before (loaded, or only in the peaks), or 100 told: nothing."""
    the_rule = rule(kind="milestone", values=[100])
    assert judge(the_rule, tag([150, 80, 120])) == []
    assert judge(the_rule, tag([60, 80, 120], peaks={"uses": 150})) == []
    assert judge(the_rule, tag([60, 80, 120], peaks={"uses": 99})) != []
    assert judge(the_rule, tag([60, 80, 120], peaks={"accounts": 150})) != []
    told = Fired(milestones={(the_rule.name, CAT.ref): 100})
    assert judge(the_rule, tag([60, 80, 120]), fired=told) == []
    # A partial day counts as reached: it reached at least that much.
    assert judge(the_rule, tag([60, 110, 120], incomplete=[1])) == []


def test_a_milestone_crossed_twice_is_told_once() -> None:
    """60, 120 (told), 70, 130: once; 99 then 100 is exactly reached."""
    the_rule = rule(kind="milestone", values=[100])
    assert day_by_day(the_rule, [60, 120, 70, 130]) == [1]
    assert day_by_day(the_rule, [60, 99, 99, 100]) == [3]


def test_a_milestone_needs_a_day_seen_below_it() -> None:
    """A tag whose first stored day is already above: it never reached it while we watched."""
    assert judge(rule(kind="milestone", round_numbers=True), tag([300])) == []
    assert day_by_day(rule(kind="milestone", round_numbers=True), [300, 310]) == []


def test_only_the_highest_milestone_of_a_day_and_not_the_day_in_progress() -> None:
    """40 to 260 passes 50, 100 and 250: 250 told. 40 with 300 so far today: nothing yet."""
    [found] = judge(rule(kind="milestone", round_numbers=True), tag([40, 260]))
    assert found.key == "250"
    assert judge(rule(kind="milestone", round_numbers=True), tag([40, 40], today=300)) == []


# -- failing -------------------------------------------------------------------------------


def test_a_failing_tag_is_told_with_its_last_read() -> None:
    """Two rounds are not three; three and four are the same occurrence, keyed by the last read."""
    the_rule = rule(kind="failing", rounds=3)
    last = at(0, 3, 0)

    def streak(rounds: int) -> list[Occurrence]:
        found = Streak(CAT, rounds, last, "HTTP 503", last_read=last)
        return evaluate([the_rule], [], [found], Fired(), at(2))

    assert streak(2) == []
    [three], [four] = streak(3), streak(4)
    assert three.key == four.key == "2026-12-01T03:00:00Z"
    assert three.text == (
        "#Caturday on mastodon.social could not be read in 3 rounds in a row,"
        " last read 2026-12-01 03:00 UTC: HTTP 503"
    )
    never = Streak(CAT, 3, last, None, last_read=None)
    [found] = evaluate([the_rule], [], [never], Fired(), at(2))
    assert found.text == (
        "#Caturday on mastodon.social could not be read in 3 rounds in a row,"
        " never read since it was added 2026-12-01 03:00 UTC"
    )


def test_a_tag_alert_posted_on_mastodon_is_not_a_use_of_the_tag() -> None:
    """No # where Mastodon would see a hashtag, no @ that would mention anyone."""
    assert post_line("#Caturday on mastodon.social: 412 uses, \uff03猫 and @a@b.org") == (
        "Caturday on mastodon.social: 412 uses, 猫 and a@b.org"
    )


# -- over days, in storage -----------------------------------------------------------------


def answer(now: datetime, truth: Callable[[date], int], name: str) -> TagReading:
    """What the server says at ``now``: 7 days, today's count so far (by the hour)."""
    today = now.astimezone(UTC).date()
    share = now.hour / 24
    days = []
    for back in range(6, -1, -1):
        when = today - timedelta(days=back)
        uses = truth(when) if back else int(truth(when) * share)
        days.append(TagDay(when, uses, uses // 2, complete=back > 0))
    return TagReading(name, None, tuple(days))


class Tags:
    """Tags tracked on instances with their true daily uses, and rounds at chosen times."""

    def __init__(self, settings: Settings, db: Database, *rules: dict[str, Any]) -> None:
        """Check ``rules`` (scope tags) after every round."""
        self.settings = with_settings(settings, alerts=[{"scope": "tags", **r} for r in rules])
        self.db = db
        self.store = TagStore(db)
        self.truths: dict[int, tuple[str, Callable[[date], int]]] = {}
        self.fired: list[tuple[datetime, str]] = []

    async def tag(self, name: str, host: str, truth: Callable[[date], int], now: datetime) -> int:
        """Track ``name`` on ``host`` at ``now`` (its first answer stored, as tag add does)."""
        record: TagRecord = await self.store.track(InstanceAddress(host), parse_tag_name(name), now)
        self.truths[record.id] = (name, truth)
        await self.store.store(record.id, answer(now, truth, name), now)
        return record.id

    async def round(self, now: datetime, *, down: Sequence[int] = ()) -> None:
        """Read every tag at ``now`` (those ``down`` fail), then check the alerts."""
        for tag_id, (name, truth) in self.truths.items():
            if tag_id in down:
                await self.store.record_failure(tag_id, "unreachable", "did not answer", now)
            else:
                await self.store.store(tag_id, answer(now, truth, name), now)
        result = await check_alerts(self.settings, self.db, clock=lambda: now)
        self.fired += [(now, a.text) for a in result.fired]


async def test_a_rise_fires_once_however_many_rounds_a_day(
    settings: Settings, db: Database
) -> None:
    """412 after 147 is told at the first round after the day ends; 294 after 147 never."""
    days = Tags(settings, db, {"kind": "rise", "percent": 100})
    jump = {day(10): 412, day(11): 420, day(12): 300}
    await days.tag("Caturday", "mastodon.social", lambda d: jump.get(d, 147), at(5, 2, 0))
    await days.tag("caturday", "fosstodon.org", lambda d: 294 if d >= day(10) else 147, at(5))
    for n in range(6, 14):
        for hour in (2, 8, 14, 20):
            await days.round(at(n, hour, 0))
    assert days.fired == [
        (
            at(11, 2, 0),
            (
                "#Caturday on mastodon.social: 412 uses on 2026-12-11, up 180.3% from 147 the day"
                " before"
            ),
        )
    ]
    [stored] = await AlertStore(db).recent()
    assert (stored.subject, stored.occurrence) == ("tag:caturday@mastodon.social", "2026-12-11")


async def test_the_day_in_progress_and_a_gap_never_make_a_drop(
    settings: Settings, db: Database
) -> None:
    """Partial and absent days are never taken for whole days, nor for zeros.

    #caturday on mastodon.social, 100 a day, is read 4 times a day: 4 so far at 1 h, never a
    drop. On fosstodon.org it is 150 a day until day 9, 400 on day 10, 100 after, and read
    last at 7 h on day 9 (stored in progress: 43, the next rounds judging it as a whole day
    would see a fall of 71%), then down until day 17 (day 10 never read: as a zero, the
    week to day 16 would be 600 against 900). Nothing is told of either. The same rules
    tell the real drop of a third tag, once each.
    """
    days = Tags(
        settings,
        db,
        {"kind": "drop", "percent": 50},
        {"kind": "drop", "percent": 10, "window": "7d"},
    )
    await days.tag("caturday", "mastodon.social", lambda _d: 100, at(0, 1, 0))
    gapped = {day(10): 400}
    gap = await days.tag(
        "caturday",
        "fosstodon.org",
        lambda d: gapped.get(d, 150 if d <= day(9) else 100),
        at(0, 1, 0),
    )
    await days.tag("feditips", "mastodon.social", lambda d: 20 if d >= day(20) else 100, at(0))
    for n in range(1, 25):
        for hour in (1, 7, 13, 19):
            down = (n == 9 and hour > 7) or 10 <= n <= 16
            await days.round(at(n, hour, 0), down=[gap] if down else [])
    assert days.fired == [
        (
            at(21, 1, 0),
            (
                "#feditips on mastodon.social: 20 uses on 2026-12-21, down 80.0% from 100 the day"
                " before"
            ),
        ),
        (
            at(21, 1, 0),
            (
                "#feditips on mastodon.social: 620 uses in the 7 days to 2026-12-21,"
                " down 11.4% from 700 in the 7 days before"
            ),
        ),
    ]


async def test_a_failing_tag_fires_once_per_streak(settings: Settings, db: Database) -> None:
    """Two failures then a read: quiet. Four in a row: told at the third. Again: told again."""
    days = Tags(settings, db, {"kind": "failing", "rounds": 3})
    cat = await days.tag("caturday", "mastodon.social", lambda _d: 100, at(0, 3, 0))
    outcomes = [True, False, False, True, False, False, False, False, True, False, False, False]
    for index, ok in enumerate(outcomes):
        await days.round(at(1 + index // 2, 3 + 12 * (index % 2), 0), down=[] if ok else [cat])
    assert days.fired == [
        (
            at(4, 3, 0),
            (
                "#caturday on mastodon.social could not be read in 3 rounds in a row,"
                " last read 2026-12-03 15:00 UTC: did not answer"
            ),
        ),
        (
            at(6, 15, 0),
            (
                "#caturday on mastodon.social could not be read in 3 rounds in a row,"
                " last read 2026-12-06 03:00 UTC: did not answer"
            ),
        ),
    ]
    assert [a.occurrence for a in await AlertStore(db).recent()] == [
        "2026-12-06T03:00:00Z",
        "2026-12-03T15:00:00Z",
    ]


async def test_a_milestone_crossed_twice_fires_once(settings: Settings, db: Database) -> None:
    """60, 80, 120 (told), 70, 130 (not again). 150 a day at first, 90, then 130: never.

    The 150s are older than the days loaded for the rule: their peak is what keeps #feditips
    quiet.
    """
    days = Tags(settings, db, {"kind": "milestone", "values": [100]})
    cat = {day(3): 80, day(4): 120, day(5): 70, day(6): 130}
    await days.tag("caturday", "mastodon.social", lambda d: cat.get(d, 60), at(2))
    tips = {day(8): 130}
    await days.tag(
        "feditips", "mastodon.social", lambda d: tips.get(d, 150 if d <= day(2) else 90), at(2)
    )
    for n in range(3, 10):
        await days.round(at(n))
    assert days.fired == [
        (
            at(5),
            (
                "#caturday on mastodon.social reached 100 uses in a day: 120 on 2026-12-05"
                " (the most before: 80)"
            ),
        )
    ]


def test_a_count_must_be_more_than_the_count() -> None:
    """count = 10: up or down by exactly 10 is not more than 10; by 11 is."""
    rise, drop = rule(kind="rise", count=10), rule(kind="drop", count=10)
    assert judge(rise, tag([3, 13])) == []
    assert judge(rise, tag([3, 14])) != []
    assert judge(drop, tag([50, 40])) == []
    assert judge(drop, tag([50, 39])) != []


def test_a_day_exactly_at_a_milestone_before_reached_it_then() -> None:
    """100 uses on a stored day (or as the peak before): 120 later reaches nothing new."""
    the_rule = rule(kind="milestone", values=[100])
    assert judge(the_rule, tag([100, 120])) == []
    assert judge(the_rule, tag([60, 120], peaks={"uses": 100})) == []
