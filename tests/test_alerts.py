"""Judging alert rules against hand-made series: when each fires, and when it must not."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from fedimeter.domain.alert_rules import AlertRule, parse_rules
from fedimeter.domain.alerts import (
    Fired,
    Observation,
    Occurrence,
    Streak,
    Subject,
    Watched,
    evaluate,
)

DAY1 = datetime(2026, 4, 1, 3, 0, tzinfo=UTC)
ALICE = Subject("accounts", "alice@example.social", "@alice@example.social")
BOB = Subject("accounts", "bob@example.social", "@bob@example.social")
SOCIAL = Subject("instances", "example.social", "example.social")


def rule(**keys: Any) -> AlertRule:
    """One rule, parsed as the settings parse it."""
    return parse_rules([keys])[0]


def at(day: int, hour: int = 3, minute: int = 0) -> datetime:
    """``day`` 1 is 2026-04-01."""
    return DAY1.replace(hour=hour, minute=minute) + timedelta(days=day - 1)


def watched(
    points: Sequence[tuple[datetime, int | None]],
    subject: Subject = ALICE,
    metric: str = "followers",
) -> Watched:
    """A subject with one figure over time."""
    return Watched(subject, [Observation(t, {metric: v}) for t, v in points])


def judge(
    the_rule: AlertRule, item: Watched, now: datetime, fired: Fired | None = None
) -> list[Occurrence]:
    """What ``the_rule`` finds in ``item`` at ``now``."""
    return evaluate([the_rule], [item], [], fired or Fired(), now)


def daily(the_rule: AlertRule, values: list[int], subject: Subject = ALICE) -> list[int]:
    """Feed one value a day, judging after each with what fired before; the days that fired."""
    fired_days: set[date] = set()
    milestones: dict[tuple[str, str], int] = {}
    days: list[int] = []
    for index in range(len(values)):
        now = at(index + 1)
        points = [(at(i + 1), v) for i, v in enumerate(values[: index + 1])]
        memory = Fired(
            days={(the_rule.name, subject.ref): frozenset(fired_days)}, milestones=milestones
        )
        found = judge(the_rule, watched(points, subject, the_rule.metric or ""), now, memory)
        for occurrence in found:
            days.append(index + 1)
            if occurrence.kind == "milestone":
                milestones[(the_rule.name, subject.ref)] = int(occurrence.key)
            else:
                fired_days.add(date.fromisoformat(occurrence.key))
    return days


# -- drop ----------------------------------------------------------------------------------


def test_a_drop_over_the_limit_fires_with_one_clear_line() -> None:
    """-6.2% in a day against a 5 % rule: one occurrence keyed by the day."""
    found = judge(
        rule(kind="drop", percent=5), watched([(at(1), 1000), (at(2), 938)]), now=at(2, 3, 5)
    )
    [occurrence] = found
    assert occurrence.text == (
        "@alice@example.social lost 6.2% of their followers in a day: 1,000 \u2192 938"
    )
    assert occurrence.key == "2026-04-02"
    assert occurrence.subject.ref == "account:alice@example.social"
    assert occurrence.details["percent"] == -6.2
    assert occurrence.details["change"] == -62


@pytest.mark.parametrize(("after", "fires"), [(950, False), (951, False), (949, True)])
def test_a_drop_must_be_more_than_the_percentage(after: int, fires: bool) -> None:
    """Exactly 5% (or less) is not more than 5 %; 5.1 % is."""
    found = judge(rule(kind="drop", percent=5), watched([(at(1), 1000), (at(2), after)]), at(2))
    assert bool(found) is fires


def test_a_drop_over_two_days_under_the_daily_limit_never_fires() -> None:
    """-3 % a day twice is -5.9 % over two days, but no single day lost more than 5 %."""
    assert daily(rule(kind="drop", percent=5), [1000, 970, 941, 941]) == []


def test_rounds_on_the_same_day_measure_from_the_end_of_the_day_before() -> None:
    """Four rounds on day 2: the drop passes 5 % at the third; it is one occurrence of day 2."""
    the_rule = rule(kind="drop", percent=5)
    points = [(at(1, 21), 1000)]
    keys = []
    for hour, value in [(3, 990), (9, 970), (15, 945), (21, 940)]:
        points.append((at(2, hour), value))
        keys.append([o.key for o in judge(the_rule, watched(points), at(2, hour, 5))])
    assert keys == [[], [], ["2026-04-02"], ["2026-04-02"]]


def test_a_drop_fires_once_per_day_and_again_on_a_new_day() -> None:
    """Day 2 falls 10 %, day 3 holds, day 4 falls 10 % again: days 2 and 4."""
    assert daily(rule(kind="drop", percent=5), [1000, 900, 900, 810]) == [2, 4]


def test_a_drop_needs_both_percent_and_count_when_both_are_given() -> None:
    """25 % but 10 followers, or 40 followers but 4 %, stay quiet; 60 and 6 % fire."""
    the_rule = rule(kind="drop", percent=5, count=20)
    assert judge(the_rule, watched([(at(1), 40), (at(2), 30)]), at(2)) == []
    assert judge(the_rule, watched([(at(1), 1000), (at(2), 960)]), at(2)) == []
    assert judge(the_rule, watched([(at(1), 1000), (at(2), 940)]), at(2)) != []


def test_a_drop_by_count_alone() -> None:
    """count = 50: 50 lost is not more than 50, 51 is; the text says how many."""
    the_rule = rule(kind="drop", count=50, metric="statuses")
    assert judge(the_rule, watched([(at(1), 500), (at(2), 450)], metric="statuses"), at(2)) == []
    [found] = judge(the_rule, watched([(at(1), 500), (at(2), 449)], metric="statuses"), at(2))
    assert found.text.startswith("@alice@example.social lost 10.2% of their posts in a day")


def test_a_week_window_fires_once_per_window() -> None:
    """-2 % a day against -10% in 7 days: told on day 7, quiet for a week, told on day 14."""
    values = [1000 - 20 * i for i in range(15)]
    assert daily(rule(kind="drop", percent=10, window="7d"), values) == [7, 14]


def test_a_base_older_than_the_window_says_since_when() -> None:
    """Not measured for four days: the text says since when the figures are compared."""
    [found] = judge(rule(kind="drop", percent=5), watched([(at(1), 1000), (at(5), 900)]), at(5))
    assert found.text.endswith("since 2026-04-01: 1,000 \u2192 900")


def test_a_new_subject_is_measured_from_its_first_value_of_the_day() -> None:
    """No value before the day: the first one of the day is the start."""
    points = [(at(2, 1), 1000), (at(2, 9), 900)]
    assert [o.key for o in judge(rule(kind="drop", percent=5), watched(points), at(2, 9))] == [
        "2026-04-02"
    ]
    assert judge(rule(kind="drop", percent=5), watched(points[:1]), at(2, 1)) == []


def test_stale_values_are_not_judged() -> None:
    """A subject not measured in the last day is not compared over old figures."""
    item = watched([(at(1), 1000), (at(2), 800)])
    assert judge(rule(kind="drop", percent=5), item, at(3, 4)) == []
    assert judge(rule(kind="drop", percent=5), item, at(3, 2)) != []


def test_a_rise_does_not_make_a_drop_and_the_other_way_round() -> None:
    """A drop rule ignores growth, a rise rule ignores falls."""
    up = watched([(at(1), 1000), (at(2), 2000)])
    down = watched([(at(1), 1000), (at(2), 500)])
    assert judge(rule(kind="drop", percent=5), up, at(2)) == []
    assert judge(rule(kind="rise", percent=5), down, at(2)) == []


# -- rise ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("after", "fires"), [(1400, False), (1500, False), (1600, True)])
def test_an_instance_jumping_implausibly(after: int, fires: bool) -> None:
    """Users +50% in a day: 40 % and exactly 50 % are not, 60 % is."""
    the_rule = rule(kind="jump", scope="instances", percent=50)
    item = watched([(at(1), 1000), (at(2), after)], SOCIAL, "users")
    found = judge(the_rule, item, at(2))
    assert bool(found) is fires
    if fires:
        assert found[0].kind == "rise"
        assert found[0].text == (
            "example.social gained 60.0% more users in a day: 1,000 \u2192 1,600"
        )


def test_a_rise_from_zero_has_no_percentage_and_needs_a_count() -> None:
    """0 to 500 users: a percent rule cannot say, a count rule can."""
    item = watched([(at(1), 0), (at(2), 500)], SOCIAL, "users")
    assert judge(rule(kind="rise", scope="instances", percent=50), item, at(2)) == []
    [found] = judge(rule(kind="rise", scope="instances", count=100), item, at(2))
    assert found.text == "example.social went from 0 to 500 users in a day"


def test_unknown_values_are_skipped() -> None:
    """An instance down all of day 2 (no users known) is compared with its last known value."""
    item = watched([(at(1), 1000), (at(2), None), (at(2, 9), None), (at(3), 1600)], SOCIAL, "users")
    [found] = judge(rule(kind="rise", scope="instances", percent=50), item, at(3))
    assert found.details["before"] == 1000
    assert judge(rule(kind="rise", scope="instances", percent=50), item, at(2, 10)) == []


# -- milestone -----------------------------------------------------------------------------


def test_a_milestone_fires_on_the_day_it_is_reached() -> None:
    """990 then 1,004: 1,000 reached, keyed by its value."""
    [found] = judge(
        rule(kind="milestone", values=[1000, 5000]), watched([(at(1), 990), (at(2), 1004)]), at(2)
    )
    assert found.text == "@alice@example.social reached 1,000 followers (now 1,004)"
    assert found.key == "1000"


def test_a_milestone_reached_dipped_below_and_reached_again_fires_once() -> None:
    """990, 1,005, 995, 1,010: told on day 2 only."""
    assert daily(rule(kind="milestone", values=[1000]), [990, 1005, 995, 1010]) == [2]


def test_a_milestone_just_missed_does_not_fire() -> None:
    """999 is not 1,000; exactly 1,000 is."""
    assert daily(rule(kind="milestone", values=[1000]), [990, 999, 999]) == []
    assert daily(rule(kind="milestone", values=[1000]), [990, 999, 1000]) == [3]


def test_a_subject_first_seen_above_a_milestone_did_not_reach_it() -> None:
    """Tracked at 50,000 followers: nothing to tell about 10, 25, ... 50,000."""
    assert daily(rule(kind="milestone", round_numbers=True), [50_000, 50_010]) == []


def test_only_the_highest_milestone_passed_at_once_is_told() -> None:
    """240 to 1,010 passes 250, 500 and 1,000: one occurrence, 1,000."""
    [found] = judge(
        rule(kind="milestone", round_numbers=True), watched([(at(1), 240), (at(2), 1010)]), at(2)
    )
    assert found.key == "1000"


def test_a_milestone_below_one_told_is_not_told() -> None:
    """1,000 told; a fall to 400 and a climb past 500 tells nothing."""
    the_rule = rule(kind="milestone", round_numbers=True)
    memory = Fired(milestones={(the_rule.name, ALICE.ref): 1000})
    assert judge(the_rule, watched([(at(1), 400), (at(2), 520)]), at(2), memory) == []
    assert judge(the_rule, watched([(at(1), 2400), (at(2), 2600)]), at(2), memory) != []


def test_round_numbers_and_values_together() -> None:
    """round_numbers adds 10, 25, 50, 100, 250, ... to the values given."""
    the_rule = rule(kind="milestone", round_numbers=True, values=[123])
    assert daily(the_rule, [90, 110, 120, 130, 240, 260]) == [2, 4, 6]


# -- failing -------------------------------------------------------------------------------


def streak(rounds: int, subject: Subject = ALICE, reason: str | None = "503") -> Streak:
    """A failing streak that began on day 1."""
    return Streak(subject, rounds, at(1, 3, 5), reason)


def test_failing_fires_at_the_number_of_rounds_keyed_by_the_streak_start() -> None:
    """Two rounds are not three; three are, four are the same occurrence."""
    the_rule = rule(kind="failing", rounds=3)
    assert evaluate([the_rule], [], [streak(2)], Fired(), at(2)) == []
    [three] = evaluate([the_rule], [], [streak(3)], Fired(), at(2))
    [four] = evaluate([the_rule], [], [streak(4)], Fired(), at(3))
    assert three.key == four.key == "2026-04-01T03:05:00Z"
    assert three.text == (
        "@alice@example.social could not be measured in 3 rounds in a row,"
        " since 2026-04-01 03:05 UTC: 503"
    )


def test_a_failing_instance_is_told_in_its_own_words() -> None:
    """Instances answer none of their sources."""
    the_rule = rule(kind="failing", scope="instances")
    [found] = evaluate([the_rule], [], [streak(3, SOCIAL, None), streak(5)], Fired(), at(2))
    assert found.text == (
        "example.social answered none of its sources in 3 rounds in a row,"
        " since 2026-04-01 03:05 UTC"
    )


# -- selection -----------------------------------------------------------------------------


def test_only_limits_a_rule_to_the_subjects_it_names() -> None:
    """only = [@Alice@Example.Social]: Bob's drop is not Alice's business."""
    the_rule = rule(kind="drop", percent=5, only=["@Alice@Example.Social"])
    alice = watched([(at(1), 1000), (at(2), 900)])
    bob = watched([(at(1), 1000), (at(2), 900)], BOB)
    found = evaluate([the_rule], [alice, bob], [], Fired(), at(2))
    assert [o.subject for o in found] == [ALICE]


def test_a_rule_watches_only_its_scope() -> None:
    """An instance rule on statuses ignores an account's statuses, and the other way round."""
    the_rule = rule(kind="drop", scope="instances", metric="statuses", percent=5)
    account = watched([(at(1), 1000), (at(2), 900)], ALICE, "statuses")
    instance = watched([(at(1), 1000), (at(2), 900)], SOCIAL, "statuses")
    found = evaluate([the_rule], [account, instance], [], Fired(), at(2))
    assert [o.subject for o in found] == [SOCIAL]
    assert found[0].text.startswith("example.social lost 10.0% of its posts")


def test_a_subject_exactly_at_a_milestone_the_day_before_did_not_reach_it_now() -> None:
    """1,000 at the end of day 1, 1,005 on day 2: it was not below 1,000, nothing is told."""
    assert daily(rule(kind="milestone", values=[1000]), [1000, 1005]) == []
    assert daily(rule(kind="milestone", round_numbers=True), [100, 240]) == []
