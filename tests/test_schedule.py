"""Schedules: parsing cron expressions and intervals, next fire times, overdue rounds."""

from __future__ import annotations

import itertools
import time as clock_time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedimeter.domain.schedule import (
    DEFAULT_SCHEDULE,
    CronSchedule,
    IntervalSchedule,
    parse_schedule,
)
from fedimeter.errors import InvalidInput


def at(  # noqa: PLR0917 - positional, like datetime()
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime:
    """A UTC datetime, to keep the tables short."""
    return datetime(year, month, day, hour, minute, second, us, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------
# Cron: next fire times, computed by hand. 2026-03-01 is a Sunday; 2028-02-29 a Tuesday.


@pytest.mark.parametrize(
    ("expression", "moment", "expected"),
    [
        # the default, and "strictly after"
        ("0 3 * * *", at(2026, 3, 1, 2, 59, 59), at(2026, 3, 1, 3, 0)),
        ("0 3 * * *", at(2026, 3, 1, 3, 0), at(2026, 3, 2, 3, 0)),
        ("0 3 * * *", at(2026, 3, 1, 3, 0, 0, 1), at(2026, 3, 2, 3, 0)),
        ("0 3 * * *", at(2026, 12, 31, 3, 0), at(2027, 1, 1, 3, 0)),
        ("0 3 * * *", at(2026, 2, 28, 12, 0), at(2026, 3, 1, 3, 0)),
        ("0 3 * * *", at(2028, 2, 28, 12, 0), at(2028, 2, 29, 3, 0)),
        # steps and ranges in the minute field
        ("*/15 * * * *", at(2026, 3, 1, 12, 7, 30), at(2026, 3, 1, 12, 15)),
        ("*/15 * * * *", at(2026, 3, 1, 12, 45), at(2026, 3, 1, 13, 0)),
        ("*/15 * * * *", at(2026, 3, 1, 23, 59), at(2026, 3, 2, 0, 0)),
        ("10-50/20 * * * *", at(2026, 3, 1, 12, 31), at(2026, 3, 1, 12, 50)),
        ("10-50/20 * * * *", at(2026, 3, 1, 12, 50), at(2026, 3, 1, 13, 10)),
        ("5/20 * * * *", at(2026, 3, 1, 12, 46), at(2026, 3, 1, 13, 5)),
        ("* * * * *", at(2026, 3, 1, 12, 0, 59, 999999), at(2026, 3, 1, 12, 1)),
        ("0 9-17/4 * * *", at(2026, 3, 1, 13, 0), at(2026, 3, 1, 17, 0)),
        ("0 9-17/4 * * *", at(2026, 3, 1, 17, 0), at(2026, 3, 2, 9, 0)),
        # month ends and leap years
        ("0 0 31 * *", at(2026, 4, 1), at(2026, 5, 31)),
        ("0 0 31 * *", at(2026, 1, 31), at(2026, 3, 31)),
        ("0 0 30 * *", at(2026, 1, 30), at(2026, 3, 30)),
        ("0 0 29 2 *", at(2026, 3, 1), at(2028, 2, 29)),
        ("0 0 29 2 *", at(2028, 2, 29), at(2032, 2, 29)),
        ("0 0 29 2 *", at(2096, 3, 1), at(2104, 2, 29)),  # 2100 is no leap year
        # 29 February on a Sunday (AND rule: the weekday field starts with "*"): 2032, 2060,
        # 2088, then 2128, because 2100 has no 29 February.
        ("0 0 29 2 */7", at(2026, 1, 1), at(2032, 2, 29)),
        ("0 0 29 2 */7", at(2088, 3, 1), at(2128, 2, 29)),
        # weekdays: numbers, names, 0 and 7 both Sunday
        ("0 9 * * mon-fri", at(2026, 3, 6, 9, 0), at(2026, 3, 9, 9, 0)),
        ("0 9 * * 1-5", at(2026, 3, 6, 8, 0), at(2026, 3, 6, 9, 0)),
        ("0 0 * * 0", at(2026, 3, 2), at(2026, 3, 8)),
        ("0 0 * * 7", at(2026, 3, 2), at(2026, 3, 8)),
        ("0 0 * * SUN", at(2026, 3, 2), at(2026, 3, 8)),
        ("0 0 * * 5-7", at(2026, 3, 2), at(2026, 3, 6)),
        ("0 0 * * 5-7", at(2026, 3, 7), at(2026, 3, 8)),
        ("0 0 * * sat,Sun", at(2026, 3, 2), at(2026, 3, 7)),
        ("0 0 * * 1/2", at(2026, 3, 7), at(2026, 3, 9)),  # Mon, Wed, Fri: "1/2" stops at Sat
        # the OR rule: day 10 or any Friday
        ("0 0 10 * fri", at(2026, 3, 1), at(2026, 3, 6)),
        ("0 0 10 * fri", at(2026, 3, 6), at(2026, 3, 10)),
        ("0 0 10 * fri", at(2026, 3, 10), at(2026, 3, 13)),
        # no OR when a field starts with "*": odd days that are Mondays (2 and 16 are even)
        ("0 0 */2 * mon", at(2026, 3, 1), at(2026, 3, 9)),
        ("0 0 */2 * mon", at(2026, 3, 9), at(2026, 3, 23)),
        # months: names in any case, steps
        ("0 12 1 JAN,Jul *", at(2026, 2, 1), at(2026, 7, 1, 12, 0)),
        ("0 12 1 jan-mar *", at(2026, 3, 1, 12, 0), at(2027, 1, 1, 12, 0)),
        ("0 0 1 */3 *", at(2026, 2, 15), at(2026, 4, 1)),
        ("0 0 1 */3 *", at(2026, 10, 1), at(2027, 1, 1)),
        # macros
        ("@hourly", at(2026, 3, 1, 10, 0), at(2026, 3, 1, 11, 0)),
        ("@daily", at(2026, 3, 1, 10, 0), at(2026, 3, 2, 0, 0)),
        ("@midnight", at(2026, 3, 1, 10, 0), at(2026, 3, 2, 0, 0)),
        ("@weekly", at(2026, 3, 1), at(2026, 3, 8)),
        ("@monthly", at(2026, 1, 31, 12, 0), at(2026, 2, 1)),
        ("@yearly", at(2026, 1, 1), at(2027, 1, 1)),
        ("@ANNUALLY", at(2026, 6, 1), at(2027, 1, 1)),
        ("daily", at(2026, 3, 1, 3, 30), at(2026, 3, 2, 3, 0)),
    ],
)
def test_cron_next_fire_time(expression: str, moment: datetime, expected: datetime) -> None:
    """next_after gives the first matching minute strictly after the moment."""
    result = parse_schedule(expression).next_after(moment, None)
    assert result == expected
    assert result.tzinfo is UTC


def test_cron_ignores_the_last_start() -> None:
    """A cron time is fixed by the clock, whatever round ran before."""
    schedule = parse_schedule("0 3 * * *")
    moment = at(2026, 3, 1, 12, 0)
    assert schedule.next_after(moment, at(2026, 3, 1, 11, 0)) == at(2026, 3, 2, 3, 0)
    assert schedule.next_after(moment, at(2020, 1, 1)) == at(2026, 3, 2, 3, 0)


def test_utc_has_no_daylight_saving_gaps() -> None:
    """02:30 UTC exists on the days Europe and America change their clocks: 24 h apart."""
    schedule = parse_schedule("30 2 * * *")
    fires = [at(2026, 3, 1)]
    for _ in range(40):
        fires.append(schedule.next_after(fires[-1], None))
    assert at(2026, 3, 8, 2, 30) in fires  # United States change
    assert at(2026, 3, 29, 2, 30) in fires  # European Union change
    assert {b - a for a, b in itertools.pairwise(fires[1:])} == {timedelta(days=1)}


def test_cron_takes_any_offset_and_answers_in_utc() -> None:
    """A moment at +02:00 is the same instant; the answer is UTC."""
    moment = datetime(2026, 3, 1, 4, 30, tzinfo=timezone(timedelta(hours=2)))  # 02:30 UTC
    result = parse_schedule("0 3 * * *").next_after(moment, None)
    assert result == at(2026, 3, 1, 3, 0)
    assert result.tzinfo is UTC


def test_rare_dates_are_found_without_walking_every_minute() -> None:
    """A 40-year gap (29 February on a Sunday) takes milliseconds, not a minute-by-minute walk."""
    schedule = parse_schedule("0 0 29 2 */7")
    started = clock_time.perf_counter()
    for _ in range(20):
        assert schedule.next_after(at(2088, 3, 1), None) == at(2128, 2, 29)
    # A minute-by-minute walk over 40 years is 21 million steps, far beyond this budget.
    assert clock_time.perf_counter() - started < 2.0


def test_the_default_is_daily_at_three_utc() -> None:
    """DEFAULT_SCHEDULE and the 'daily' alias both mean 03:00 UTC every day."""
    assert DEFAULT_SCHEDULE == "0 3 * * *"
    default = parse_schedule(DEFAULT_SCHEDULE)
    alias = parse_schedule("daily")
    assert default.describe() == alias.describe() == "every day at 03:00 UTC"
    assert alias.next_after(at(2026, 3, 1), None) == at(2026, 3, 1, 3, 0)


def test_macros_expand_to_their_cron_expressions() -> None:
    """@daily is 0 0 * * *, @hourly 0 * * * *, @weekly 0 0 * * 0, @monthly 0 0 1 * *."""
    pairs = {
        "@daily": "0 0 * * *",
        "@hourly": "0 * * * *",
        "@weekly": "0 0 * * 0",
        "@monthly": "0 0 1 * *",
        "@yearly": "0 0 1 1 *",
    }
    for macro, expression in pairs.items():
        a, b = parse_schedule(macro), parse_schedule(expression)
        assert isinstance(a, CronSchedule)
        assert isinstance(b, CronSchedule)
        assert (a.minutes, a.hours, a.days, a.months, a.weekdays, a.day_or) == (
            b.minutes,
            b.hours,
            b.days,
            b.months,
            b.weekdays,
            b.day_or,
        )
        assert a.text == macro


def test_cron_text_is_normalised() -> None:
    """Extra blanks and upper case are tidied, so the text compares and displays cleanly."""
    assert parse_schedule("  0   3 * *\tMON ").text == "0 3 * * mon"


# ---------------------------------------------------------------------------------------------
# Cron: overdue rounds


@pytest.mark.parametrize(
    ("now", "last_start", "overdue"),
    [
        (at(2026, 3, 2, 12, 0), None, True),
        (at(2026, 3, 2, 3, 0), at(2026, 3, 1, 3, 0, 5), True),  # today's 03:00 not run yet
        (at(2026, 3, 2, 2, 59), at(2026, 3, 1, 3, 0, 5), False),  # yesterday's ran
        (at(2026, 3, 2, 3, 0), at(2026, 3, 2, 3, 0), False),  # started on the minute
        (at(2026, 3, 2, 12, 0), at(2026, 3, 2, 3, 0, 30), False),  # started late, counts
        (at(2026, 3, 2, 3, 0), at(2026, 3, 2, 2, 59, 59), True),  # started before the minute
        (at(2026, 3, 2, 12, 0), at(2024, 1, 1), True),  # long ago
        (at(2026, 3, 2, 12, 0), at(2026, 3, 3, 12, 0), False),  # a clock ahead of ours
    ],
)
def test_cron_overdue(now: datetime, last_start: datetime | None, overdue: bool) -> None:
    """Overdue when the newest fire time at or before now saw no round start at or after it."""
    assert parse_schedule("0 3 * * *").is_overdue(now, last_start) is overdue


# ---------------------------------------------------------------------------------------------
# Intervals


@pytest.mark.parametrize(
    ("text", "interval", "normal"),
    [
        ("6h", timedelta(hours=6), "6h"),
        ("30m", timedelta(minutes=30), "30m"),
        ("1d", timedelta(days=1), "1d"),
        ("2w", timedelta(weeks=2), "2w"),
        ("90s", timedelta(seconds=90), "90s"),
        ("1m", timedelta(minutes=1), "1m"),
        ("60s", timedelta(minutes=1), "60s"),
        ("1h30m", timedelta(minutes=90), "1h30m"),
        (" 1d 12h ", timedelta(hours=36), "1d12h"),
        ("6H", timedelta(hours=6), "6h"),
        ("1w2d3h4m5s", timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5), "1w2d3h4m5s"),
        ("366d", timedelta(days=366), "366d"),
    ],
)
def test_intervals_parse(text: str, interval: timedelta, normal: str) -> None:
    """Numbers with w, d, h, m, s units, alone or combined in decreasing order."""
    schedule = parse_schedule(text)
    assert isinstance(schedule, IntervalSchedule)
    assert schedule.interval == interval
    assert schedule.text == normal


def test_interval_next_is_one_interval_after_the_last_start() -> None:
    """While nothing is overdue, the next round is last start plus the interval."""
    schedule = parse_schedule("6h")
    assert schedule.next_after(at(2026, 3, 1, 3, 0), at(2026, 3, 1, 0, 0)) == at(2026, 3, 1, 6)
    assert schedule.next_after(at(2026, 3, 1, 0, 0), at(2026, 3, 1, 0, 0)) == at(2026, 3, 1, 6)


def test_interval_next_when_overdue_is_the_next_grid_point() -> None:
    """When a round is overdue, the answer is the first grid point after the moment."""
    schedule = parse_schedule("6h")
    last = at(2026, 3, 1, 0, 0)
    assert schedule.next_after(at(2026, 3, 1, 13, 0), last) == at(2026, 3, 1, 18, 0)
    assert schedule.next_after(at(2026, 3, 1, 18, 0), last) == at(2026, 3, 2, 0, 0)


def test_interval_next_without_any_round_is_one_interval_on() -> None:
    """With no round so far, the round runs at once and the next is one interval later."""
    schedule = parse_schedule("6h")
    assert schedule.next_after(at(2026, 3, 1, 13, 0), None) == at(2026, 3, 1, 19, 0)


def test_interval_next_after_a_start_from_a_clock_ahead() -> None:
    """A last start after the moment counts from that start."""
    schedule = parse_schedule("6h")
    assert schedule.next_after(at(2026, 3, 1, 0), at(2026, 3, 1, 2)) == at(2026, 3, 1, 8)


@pytest.mark.parametrize(
    ("now", "last_start", "overdue"),
    [
        (at(2026, 3, 1, 12), None, True),
        (at(2026, 3, 1, 6), at(2026, 3, 1, 0), True),
        (at(2026, 3, 1, 5, 59, 59, 999999), at(2026, 3, 1, 0), False),
        (at(2026, 3, 3), at(2026, 3, 1, 0), True),
        (at(2026, 3, 1, 0), at(2026, 3, 1, 1), False),
    ],
)
def test_interval_overdue(now: datetime, last_start: datetime | None, overdue: bool) -> None:
    """Overdue when no round ran or the newest started an interval or more ago."""
    assert parse_schedule("6h").is_overdue(now, last_start) is overdue


def test_intervals_refuse_out_of_range_values_even_from_code() -> None:
    """An IntervalSchedule built directly still cannot have a zero interval."""
    with pytest.raises(ValueError, match="outside"):
        IntervalSchedule("0m", timedelta(0))
    with pytest.raises(ValueError, match="outside"):
        IntervalSchedule("59s", timedelta(seconds=59))


def test_cron_schedules_refuse_bad_sets_even_from_code() -> None:
    """A CronSchedule built directly cannot hold an empty or out-of-range set."""
    with pytest.raises(ValueError, match="non-empty"):
        CronSchedule("x", (), (3,), (1,), (1,), (0,), day_or=False)
    with pytest.raises(ValueError, match="outside"):
        CronSchedule("x", (0,), (24,), (1,), (1,), (0,), day_or=False)


# ---------------------------------------------------------------------------------------------
# Descriptions


@pytest.mark.parametrize(
    ("text", "description"),
    [
        ("0 3 * * *", "every day at 03:00 UTC"),
        ("@daily", "every day at 00:00 UTC"),
        ("30 3,15 * * *", "every day at 03:30 and 15:30 UTC"),
        ("0 9 * * mon-fri", "every Monday, Tuesday, Wednesday, Thursday and Friday at 09:00 UTC"),
        ("@weekly", "every Sunday at 00:00 UTC"),
        ("0 0 1,15 * *", "on the 1st and 15th of every month at 00:00 UTC"),
        ("0 6 2,3,11,22 * *", "on the 2nd, 3rd, 11th and 22nd of every month at 06:00 UTC"),
        ("@hourly", "every hour at minute 0"),
        ("* * * * *", "every minute"),
        ("0 0 1-31 * mon", "every day at 00:00 UTC"),  # OR with every day of the month
        ("*/15 * * * *", "cron '*/15 * * * *' (UTC)"),
        ("0 0 1 * mon", "cron '0 0 1 * mon' (UTC)"),
        ("0 0 1 jan *", "cron '0 0 1 jan *' (UTC)"),
        ("6h", "every 6 hours"),
        ("1h", "every hour"),
        ("60m", "every hour"),
        ("1d", "every day"),
        ("1w", "every week"),
        ("1h30m", "every 1 hour and 30 minutes"),
        ("1d2h3m", "every 1 day, 2 hours and 3 minutes"),
        ("90s", "every 1 minute and 30 seconds"),
    ],
)
def test_describe(text: str, description: str) -> None:
    """Schedules read as words where a common shape allows, else as their cron text."""
    assert parse_schedule(text).describe() == description


# ---------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "the schedule is empty"),
        ("   ", "the schedule is empty"),
        ("0 3 * *", "a cron expression has 5 fields"),
        ("0 3 * * * *", "a cron expression has 5 fields"),
        ("6 h", "a cron expression has 5 fields"),
        ("60 3 * * *", "the minute field allows 0-59, not 60"),
        ("0 24 * * *", "the hour field allows 0-23, not 24"),
        ("0 3 0 * *", "the day-of-month field allows 1-31, not 0"),
        ("0 3 32 * *", "the day-of-month field allows 1-31, not 32"),
        ("0 3 * 13 *", "the month field allows 1-12, not 13"),
        ("0 3 * * 8", "the day-of-week field allows 0-7, not 8"),
        ("0 3 * * funday", "'funday' in the day-of-week field"),
        ("0 3 * * jan", "'jan' in the day-of-week field"),
        ("0 3 * mon *", "'mon' in the month field"),
        ("0 3 * * sat-sun", "runs backwards"),
        ("0 5-1 * * *", "runs backwards"),
        ("*/0 * * * *", "the step after '/' must be a whole number above 0"),
        ("*/x * * * *", "the step after '/'"),
        ("1,,2 * * * *", "'' in the minute field"),
        ("-5 * * * *", "in the minute field"),
        ("? * * * *", "in the minute field"),
        ("0 0 30 2 *", "it never fires"),
        ("0 0 31 4,6,9,11 *", "it never fires"),
        ("0 0 30 2 */7", "it never fires"),
        ("@reboot", "the macros are"),
        ("6", "or an interval such as"),
        ("every 6h", "or an interval such as"),
        ("6x", "or an interval such as"),
        ("30m1h", "or an interval such as"),
        ("h", "or an interval such as"),
        ("30s", "at least 1 minute"),
        ("59s", "at least 1 minute"),
        ("0m", "at least 1 minute"),
        ("367d", "at most 366 days"),
        ("9" * 150 + "w", "at most 366 days"),
        ("1" * 201, "at most 200 characters"),
    ],
)
def test_bad_schedules_are_invalid_input(text: str, fragment: str) -> None:
    """Each mistake gives InvalidInput: one sentence saying what is wrong."""
    with pytest.raises(InvalidInput) as caught:
        parse_schedule(text)
    message = str(caught.value)
    assert fragment in message
    assert "\n" not in message
    assert ". " not in message.replace("e.g.", "")  # one sentence


@pytest.mark.parametrize("text", ["0 3 * *", "6", "0 0 30 2 *", "@reboot", "funday"])
def test_error_messages_show_the_text_and_accepted_forms(text: str) -> None:
    """The message quotes what was typed and shows an accepted form."""
    with pytest.raises(InvalidInput) as caught:
        parse_schedule(text)
    message = str(caught.value)
    if text:
        assert repr(text) in message
    assert "'6h'" in message or "'0 3 * * *'" in message or "never fires" in message


def test_the_or_rule_makes_impossible_days_possible() -> None:
    """'0 0 30 2 mon' is valid: it fires on Mondays in February."""
    schedule = parse_schedule("0 0 30 2 mon")
    assert schedule.next_after(at(2026, 3, 1), None) == at(2027, 2, 1)  # a Monday


@pytest.mark.parametrize("text", ["0 3 * * *", "6h"])
def test_naive_datetimes_raise_value_error(text: str) -> None:
    """Every datetime must carry a time zone; a naive one is a bug in the caller."""
    schedule = parse_schedule(text)
    naive = datetime(2026, 3, 1, 12, 0)  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="naive"):
        schedule.next_after(naive, None)
    with pytest.raises(ValueError, match="naive"):
        schedule.next_after(at(2026, 3, 1), naive)
    with pytest.raises(ValueError, match="naive"):
        schedule.is_overdue(naive, at(2026, 3, 1))
    with pytest.raises(ValueError, match="naive"):
        schedule.is_overdue(at(2026, 3, 1), naive)


# ---------------------------------------------------------------------------------------------
# Properties: random cron expressions against a brute-force oracle written independently.


@dataclass(frozen=True)
class Expression:
    """A cron expression as text and the values each field means."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    day_restricted: bool
    weekday_restricted: bool

    def day_matches(self, day: date) -> bool:
        """Whether the day fires, by crontab(5)'s wording."""
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        in_week = day.isoweekday() % 7 in self.weekdays
        if self.day_restricted and self.weekday_restricted:
            return in_month or in_week
        return in_month and in_week

    def matches(self, moment: datetime) -> bool:
        """Whether the minute of ``moment`` fires."""
        return (
            moment.minute in self.minutes
            and moment.hour in self.hours
            and self.day_matches(moment.date())
        )

    def times(self, day: date) -> list[datetime]:
        """Every firing minute of a firing day, in order."""
        return [
            datetime(day.year, day.month, day.day, h, m, tzinfo=UTC)
            for h in sorted(self.hours)
            for m in sorted(self.minutes)
        ]

    def brute_next(self, moment: datetime) -> datetime | None:
        """The first firing minute after ``moment``, walking day by day for 400 years."""
        day = moment.date()
        for _ in range(400 * 366):
            if self.day_matches(day):
                later = [t for t in self.times(day) if t > moment]
                if later:
                    return later[0]
            day += timedelta(days=1)
        return None

    def brute_previous(self, moment: datetime) -> datetime | None:
        """The last firing minute at or before ``moment``, walking back day by day."""
        day = moment.date()
        for _ in range(400 * 366):
            if self.day_matches(day):
                earlier = [t for t in self.times(day) if t <= moment]
                if earlier:
                    return earlier[-1]
            day -= timedelta(days=1)
        return None


@st.composite
def field(
    draw: st.DrawFn, low: int, high: int, names: list[str] | None = None
) -> tuple[str, frozenset[int], bool]:
    """One field: its text, the values it means, and whether it starts with '*'."""
    kind = draw(st.sampled_from(["star", "step", "range", "list", "single", "open"]))
    if kind == "star":
        return "*", frozenset(range(low, high + 1)), False
    if kind == "step":
        step = draw(st.integers(1, high - low + 1))
        return f"*/{step}", frozenset(range(low, high + 1, step)), False
    if kind == "open":
        first = draw(st.integers(low, high))
        step = draw(st.integers(1, high - low + 1))
        return f"{first}/{step}", frozenset(range(first, high + 1, step)), True
    if kind == "range":
        first = draw(st.integers(low, high))
        last = draw(st.integers(first, high))
        step = draw(st.integers(1, 5))
        return f"{first}-{last}/{step}", frozenset(range(first, last + 1, step)), True
    values = draw(st.lists(st.integers(low, high), min_size=1, max_size=4 if kind == "list" else 1))
    words = [names[v - low] if names and draw(st.booleans()) else str(v) for v in values]
    return ",".join(words), frozenset(values), True


MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


@st.composite
def expressions(draw: st.DrawFn) -> Expression:
    """Random valid cron expressions, with names, steps, ranges, lists and 7 for Sunday."""
    minute, minutes, _ = draw(field(0, 59))
    hour, hours, _ = draw(field(0, 23))
    day, days, day_restricted = draw(field(1, 31))
    month, months, _ = draw(field(1, 12, MONTHS))
    weekday, weekdays, weekday_restricted = draw(field(0, 6, WEEKDAYS))
    if draw(st.booleans()) and weekday in {"0", "sun"}:
        weekday = "7"
    return Expression(
        f"{minute} {hour} {day} {month} {weekday}",
        minutes,
        hours,
        days,
        months,
        weekdays,
        day_restricted,
        weekday_restricted,
    )


moments = st.datetimes(
    min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
    max_value=datetime(2200, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)


@settings(max_examples=150, deadline=None)
@given(expressions(), moments)
def test_next_after_equals_the_brute_force_answer(expression: Expression, moment: datetime) -> None:
    """next_after is the first firing minute after the moment, by a day-by-day walk."""
    try:
        schedule = parse_schedule(expression.text)
    except InvalidInput:
        assert expression.brute_next(datetime(2000, 1, 1, tzinfo=UTC)) is None
        return
    result = schedule.next_after(moment, None)
    assert result > moment
    assert expression.matches(result)
    assert result == expression.brute_next(moment)


@settings(max_examples=60, deadline=None)
@given(expressions(), moments)
def test_no_firing_minute_is_skipped(expression: Expression, moment: datetime) -> None:
    """Walking minute by minute for up to a day, nothing fires before next_after's answer."""
    try:
        schedule = parse_schedule(expression.text)
    except InvalidInput:
        return
    result = schedule.next_after(moment, None)
    assert result.second == result.microsecond == 0
    minute = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
    end = min(result, minute + timedelta(days=1))
    while minute < end:
        assert not expression.matches(minute), minute
        minute += timedelta(minutes=1)


@settings(max_examples=150, deadline=None)
@given(expressions(), moments, st.none() | moments)
def test_cron_overdue_matches_the_newest_fire_time(
    expression: Expression, now: datetime, last_start: datetime | None
) -> None:
    """Overdue exactly when the newest fire at or before now is after the last start."""
    try:
        schedule = parse_schedule(expression.text)
    except InvalidInput:
        return
    newest = expression.brute_previous(now)
    expected = last_start is None or (newest is not None and last_start < newest)
    assert schedule.is_overdue(now, last_start) is expected


offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


@given(expressions(), moments, offsets)
def test_the_time_zone_of_the_moment_does_not_matter(
    expression: Expression, moment: datetime, zone: timezone
) -> None:
    """The same instant written with any offset gives the same UTC answer."""
    try:
        schedule = parse_schedule(expression.text)
    except InvalidInput:
        return
    assert schedule.next_after(moment.astimezone(zone), None) == schedule.next_after(moment, None)


intervals = st.integers(60, 366 * 86_400).map(lambda s: timedelta(seconds=s))


@given(intervals, moments, st.none() | moments)
def test_interval_next_after_lies_on_the_grid(
    interval: timedelta, moment: datetime, last_start: datetime | None
) -> None:
    """The answer is after the moment, at most one interval on, on last_start's grid."""
    schedule = IntervalSchedule("x", interval)
    result = schedule.next_after(moment, last_start)
    assert result > moment
    if last_start is None or last_start <= moment:
        assert result <= moment + interval
    if last_start is not None:
        assert (result - last_start) % interval == timedelta(0)
        assert result - last_start >= interval


def _parses(text: str) -> bool:
    try:
        parse_schedule(text)
    except InvalidInput:
        return False
    return True


schedules = st.one_of(
    expressions().map(lambda e: e.text).filter(_parses).map(parse_schedule),
    intervals.map(lambda i: IntervalSchedule("x", i)),
)


@settings(max_examples=150, deadline=None)
@given(schedules, moments, moments)
def test_a_round_becomes_overdue_exactly_at_next_after(
    schedule: CronSchedule | IntervalSchedule, first: datetime, second: datetime
) -> None:
    """What the scheduler relies on: not overdue now means overdue from next_after on, not before.

    The scheduler sleeps until next_after and then asks is_overdue; the two must agree.
    """
    last_start, now = min(first, second), max(first, second)
    if schedule.is_overdue(now, last_start):
        return
    due = schedule.next_after(now, last_start)
    assert schedule.is_overdue(due, last_start)
    assert not schedule.is_overdue(due - timedelta(microseconds=1), last_start)
