"""When collection rounds are due: cron expressions (UTC) and fixed intervals.

``parse_schedule`` accepts

- an interval: a number and a unit, ``30m``, ``6h``, ``1d``, ``2w``, ``90s``, or several in
  decreasing order, ``1h30m``, ``1d 12h`` (``m`` is minutes; at least one minute, at most
  366 days);
- a five-field cron expression, ``minute hour day-of-month month day-of-week``, always read in
  UTC: ``*``, numbers, lists ``1,15``, ranges ``1-5``, steps ``*/15``, ``10-50/10`` and
  ``5/15`` (= ``5-59/15``), month names ``jan``..``dec`` and weekday names ``mon``..``sun``
  in any case, ``0`` and ``7`` both Sunday;
- the macros ``@hourly``, ``@daily`` (``@midnight``), ``@weekly``, ``@monthly`` and
  ``@yearly`` (``@annually``), and ``daily``, which is fedimeter's default ``0 3 * * *``.

As in classic cron (crontab(5)), when both the day-of-month and the day-of-week field are
restricted, that is neither starts with ``*``, a day matching **either** fires; otherwise a day
must match both.

Pure: no I/O, no clock. Every datetime given must be timezone-aware (naive ones raise
``ValueError``); every datetime returned is UTC.
"""

from __future__ import annotations

import calendar
import re
from bisect import bisect_left
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

from fedimeter.errors import InvalidInput

__all__ = [
    "DEFAULT_SCHEDULE",
    "MAX_INTERVAL",
    "MIN_INTERVAL",
    "CronSchedule",
    "IntervalSchedule",
    "Schedule",
    "parse_schedule",
]

#: Every day at 03:00 UTC, the time the tool fedimeter replaces collected at.
DEFAULT_SCHEDULE = "0 3 * * *"
#: Shortest interval accepted: more often would only burden the servers we measure.
MIN_INTERVAL = timedelta(minutes=1)
#: Longest interval accepted; anything longer is almost surely a typo.
MAX_INTERVAL = timedelta(days=366)

_MAX_TEXT = 200  # also keeps int() away from pathological digit strings
_MINUTE = timedelta(minutes=1)
_DAY = timedelta(days=1)
# The Gregorian calendar repeats every 400 years: an expression that matches nothing in that
# span never matches. parse_schedule refuses such expressions already, so reaching this bound
# would be a bug; it is there so that a bug cannot become an endless loop.
_SEARCH_YEARS = 400

_EXAMPLES = (
    "use a cron expression such as '0 3 * * *' (minute hour day month weekday, UTC) "
    "or an interval such as '30m', '6h', '1d' or '1h30m'"
)

_MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "daily": DEFAULT_SCHEDULE,
}

_INTERVAL = re.compile(
    r"(?:(?P<w>\d+)\s*w)?\s*(?:(?P<d>\d+)\s*d)?\s*(?:(?P<h>\d+)\s*h)?\s*"
    r"(?:(?P<m>\d+)\s*m)?\s*(?:(?P<s>\d+)\s*s)?"
)
_UNIT_SECONDS = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_UNIT_NAMES = (("week", 604_800), ("day", 86_400), ("hour", 3_600), ("minute", 60), ("second", 1))

_MONTH_NAMES = {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}
_WEEKDAY_NAMES = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_WEEKDAY_TITLES = (
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
)
# The longest each month can be (February in a leap year), to refuse days that never come.
_LONGEST_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int]
    #: Where ``5/15`` ends: the day-of-week field accepts 7 but counts only to Saturday.
    last: int


_FIELDS = (
    _Field("minute", 0, 59, {}, 59),
    _Field("hour", 0, 23, {}, 23),
    _Field("day-of-month", 1, 31, {}, 31),
    _Field("month", 1, 12, _MONTH_NAMES, 12),
    _Field("day-of-week", 0, 7, _WEEKDAY_NAMES, 6),
)


class Schedule(Protocol):
    """When rounds are due; implemented by ``CronSchedule`` and ``IntervalSchedule``."""

    @property
    def text(self) -> str:
        """The schedule as written (normalised: lower case, single spaces)."""
        ...

    def next_after(self, moment: datetime, last_start: datetime | None) -> datetime:
        """The next time a round is due, strictly after ``moment`` (UTC).

        Raises:
            ValueError: a datetime is naive.
        """
        ...

    def is_overdue(self, now: datetime, last_start: datetime | None) -> bool:
        """Whether a round is due at ``now``, given when the newest round started.

        Raises:
            ValueError: a datetime is naive.
        """
        ...

    def describe(self) -> str:
        """The schedule in words, e.g. ``every day at 03:00 UTC``."""
        ...


@dataclass(frozen=True, slots=True)
class IntervalSchedule:
    """A round every ``interval``, counted from the start of the newest round.

    Raises:
        ValueError: ``interval`` is outside ``MIN_INTERVAL``..``MAX_INTERVAL`` (use
            ``parse_schedule`` for text from people: it raises ``InvalidInput`` instead).
    """

    text: str
    interval: timedelta

    def __post_init__(self) -> None:
        """Refuse intervals outside the accepted range (see the class docstring)."""
        # A zero interval would make a scheduler spin; refuse it even from code.
        if not MIN_INTERVAL <= self.interval <= MAX_INTERVAL:
            raise ValueError(f"interval {self.interval} is outside {MIN_INTERVAL}..{MAX_INTERVAL}")

    def next_after(self, moment: datetime, last_start: datetime | None) -> datetime:
        """The first time after ``moment`` on the grid ``last_start + k * interval`` (k >= 1).

        While no round is overdue this is simply ``last_start + interval``. When one is overdue
        (or none ever ran), the answer is the first grid point after ``moment``; with no
        ``last_start`` at all it is ``moment + interval``, the caller being expected to run
        the overdue round at once (``is_overdue`` tells). A ``last_start`` after ``moment``
        (another clock ran ahead) gives ``last_start + interval``. So the result always lies
        strictly after ``moment``.

        Raises:
            ValueError: a datetime is naive.
        """
        moment = _utc(moment, "moment")
        if last_start is None:
            return moment + self.interval
        last_start = _utc(last_start, "last_start")
        if last_start > moment:
            return last_start + self.interval
        periods = (moment - last_start) // self.interval + 1
        return last_start + periods * self.interval

    def is_overdue(self, now: datetime, last_start: datetime | None) -> bool:
        """True when no round ever started or the newest started ``interval`` or more ago.

        Raises:
            ValueError: a datetime is naive.
        """
        now = _utc(now, "now")
        if last_start is None:
            return True
        return now - _utc(last_start, "last_start") >= self.interval

    def describe(self) -> str:
        """E.g. ``every 6 hours``, ``every day``, ``every 1 hour and 30 minutes``."""
        remaining = int(self.interval.total_seconds())
        parts: list[tuple[int, str]] = []
        for name, seconds in _UNIT_NAMES:
            count, remaining = divmod(remaining, seconds)
            if count:
                parts.append((count, name))
        if len(parts) == 1 and parts[0][0] == 1:
            return f"every {parts[0][1]}"
        words = [f"{count} {name}{'' if count == 1 else 's'}" for count, name in parts]
        if len(words) == 1:
            return f"every {words[0]}"
        return f"every {', '.join(words[:-1])} and {words[-1]}"


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A cron expression read in UTC: rounds are due at the start of each matching minute.

    The value sets are sorted tuples; ``weekdays`` counts 0 = Sunday .. 6 = Saturday.
    ``day_or`` is the classic cron rule: when true a day matching the day of month **or** the
    weekday fires, otherwise a day must match both.

    Raises:
        ValueError: a set is empty or holds values out of range (use ``parse_schedule``).
    """

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...]
    months: tuple[int, ...]
    weekdays: tuple[int, ...]
    day_or: bool

    def __post_init__(self) -> None:
        """Refuse empty, unsorted or out-of-range value sets (see the class docstring)."""
        limits = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))
        sets = (self.minutes, self.hours, self.days, self.months, self.weekdays)
        for values, (low, high) in zip(sets, limits, strict=True):
            if not values or values != tuple(sorted(set(values))):
                raise ValueError(f"cron values must be sorted, distinct and non-empty: {values}")
            if values[0] < low or values[-1] > high:
                raise ValueError(f"cron values {values} are outside {low}..{high}")

    def matches(self, moment: datetime) -> bool:
        """Whether ``moment`` lies in a minute the expression names.

        Raises:
            ValueError: ``moment`` is naive.
        """
        moment = _utc(moment, "moment")
        return (
            moment.minute in self.minutes
            and moment.hour in self.hours
            and moment.month in self.months
            and self._day_matches(moment.date())
        )

    def next_after(self, moment: datetime, last_start: datetime | None) -> datetime:
        """The first matching minute strictly after ``moment``, with seconds at zero, in UTC.

        ``last_start`` does not matter: cron times are fixed by the clock. The search skips
        whole months, days and hours that cannot match, so rare dates (``0 0 29 2 *``) take a
        few hundred steps at most.

        Raises:
            ValueError: ``moment`` is naive.
            InvalidInput: nothing matches within 400 years, which ``parse_schedule`` rules out.
        """
        if last_start is not None:
            _utc(last_start, "last_start")  # unused, but a naive one is still a caller's bug
        start = _utc(moment, "moment").replace(second=0, microsecond=0) + _MINUTE
        limit = start.year + _SEARCH_YEARS
        t = start
        while t.year <= limit:
            if t.month not in self.months:
                month = _first_at_least(self.months, t.month + 1)
                year = t.year if month is not None else t.year + 1
                t = datetime(year, month or self.months[0], 1, tzinfo=UTC)
                continue
            if not self._day_matches(t.date()):
                t = datetime.combine(t.date() + _DAY, time(), tzinfo=UTC)
                continue
            hour = _first_at_least(self.hours, t.hour)
            if hour is None:
                t = datetime.combine(t.date() + _DAY, time(), tzinfo=UTC)
                continue
            if hour != t.hour:
                t = t.replace(hour=hour, minute=0)
            minute = _first_at_least(self.minutes, t.minute)
            if minute is None:
                t = t.replace(minute=0) + timedelta(hours=1)
                continue
            return t.replace(minute=minute)
        raise InvalidInput(f"{self.text!r} never fires: no matching minute in 400 years")

    def is_overdue(self, now: datetime, last_start: datetime | None) -> bool:
        """True when the newest matching minute at or before ``now`` saw no round start.

        That is: no round ever started, or a matching minute lies after ``last_start`` and at
        or before ``now``. A round started at 03:00:05 covers the 03:00 minute; one started at
        02:59 does not.

        Raises:
            ValueError: a datetime is naive.
        """
        now = _utc(now, "now")
        if last_start is None:
            return True
        return self.next_after(last_start, None) <= now

    def describe(self) -> str:
        """Common shapes in words (``every day at 03:00 UTC``), anything else as cron text."""
        any_day_of_month = self._full(self.days, 1, 31)
        any_weekday = self._full(self.weekdays, 0, 6)
        if self.day_or:  # either field matching is enough
            every_day = any_day_of_month or any_weekday
        else:
            every_day = any_day_of_month and any_weekday
        any_month = self._full(self.months, 1, 12)
        any_hour = self._full(self.hours, 0, 23)
        if every_day and any_month and any_hour:
            if self._full(self.minutes, 0, 59):
                return "every minute"
            if len(self.minutes) == 1:
                return f"every hour at minute {self.minutes[0]}"
        max_times = 4
        if any_month and not any_hour and len(self.minutes) * len(self.hours) <= max_times:
            times = _join([f"{h:02}:{m:02}" for h in self.hours for m in self.minutes])
            at = f"at {times} UTC"
            if every_day:
                return f"every day {at}"
            if not self.day_or and any_day_of_month:
                return f"every {_join([_WEEKDAY_TITLES[d] for d in self.weekdays])} {at}"
            if not self.day_or and any_weekday and len(self.days) <= max_times:
                return f"on the {_join([_ordinal(d) for d in self.days])} of every month {at}"
        return f"cron {self.text!r} (UTC)"

    def _day_matches(self, day: date) -> bool:
        in_month = day.day in self.days
        # date.weekday() is 0 = Monday; cron counts 0 = Sunday.
        in_week = (day.weekday() + 1) % 7 in self.weekdays
        return (in_month or in_week) if self.day_or else (in_month and in_week)

    @staticmethod
    def _full(values: tuple[int, ...], low: int, high: int) -> bool:
        return len(values) == high - low + 1


def parse_schedule(text: str) -> Schedule:
    """A schedule from an interval (``6h``), a cron expression (``0 3 * * *``) or a macro.

    Returns:
        An ``IntervalSchedule`` or a ``CronSchedule``.

    Raises:
        InvalidInput: the text is none of these, a value is out of its field's range, the
            interval is shorter than a minute, or the cron expression can never fire. The
            message is one sentence naming what is wrong and the accepted forms.
    """
    if len(text) > _MAX_TEXT:
        raise InvalidInput(f"a schedule is at most {_MAX_TEXT} characters: {_EXAMPLES}")
    normal = " ".join(text.split()).lower()
    if not normal:
        raise InvalidInput(f"the schedule is empty: {_EXAMPLES}")
    if normal.startswith("@") or normal in _MACROS:
        return _parse_macro(text, normal)
    fields = normal.split(" ")
    if len(fields) == 1 or (len(fields) > 1 and all(f[-1:].isalpha() for f in fields)):
        return _parse_interval(text, normal)
    if len(fields) != len(_FIELDS):
        raise InvalidInput(
            f"{text!r} is not a schedule: a cron expression has 5 fields "
            "(minute hour day month weekday), e.g. '0 3 * * *', "
            "or use an interval such as '6h'"
        )
    return _parse_cron(text, normal, fields)


def _parse_macro(text: str, normal: str) -> CronSchedule:
    expansion = _MACROS.get(normal)
    if expansion is None:
        raise InvalidInput(
            f"{text!r} is not a schedule: the macros are @hourly, @daily, @weekly, @monthly "
            "and @yearly; otherwise use a cron expression such as '0 3 * * *' or an interval "
            "such as '6h'"
        )
    cron = _parse_cron(text, expansion, expansion.split(" "))
    return CronSchedule(
        normal,
        cron.minutes,
        cron.hours,
        cron.days,
        cron.months,
        cron.weekdays,
        day_or=cron.day_or,
    )


def _parse_interval(text: str, normal: str) -> IntervalSchedule:
    found = _INTERVAL.fullmatch(normal)
    if found is None or not any(found.groupdict().values()):
        raise InvalidInput(f"{text!r} is not a schedule: {_EXAMPLES}")
    seconds = sum(
        int(count) * _UNIT_SECONDS[unit] for unit, count in found.groupdict().items() if count
    )
    if seconds < MIN_INTERVAL.total_seconds():
        raise InvalidInput(
            f"{text!r} is too short a schedule: rounds must be at least 1 minute ('1m') apart, "
            "to spare the servers we measure"
        )
    if seconds > MAX_INTERVAL.total_seconds():
        raise InvalidInput(
            f"{text!r} is too long a schedule: rounds must be at most 366 days apart; "
            "for rarer rounds use a cron expression such as '0 3 1 1 *'"
        )
    return IntervalSchedule(normal.replace(" ", ""), timedelta(seconds=seconds))


def _parse_cron(text: str, normal: str, fields: list[str]) -> CronSchedule:
    values = [_parse_field(text, spec, field) for spec, field in zip(_FIELDS, fields, strict=True)]
    minutes, hours, days, months, raw_weekdays = values
    weekdays = tuple(sorted({d % 7 for d in raw_weekdays}))  # 7 is Sunday too
    # crontab(5): a field is restricted unless it starts with "*" (so "*/2" is not).
    day_or = not fields[2].startswith("*") and not fields[4].startswith("*")
    if not day_or and not any(d <= _LONGEST_MONTH[m - 1] for m in months for d in days):
        raise InvalidInput(
            f"{text!r} is not a schedule: it never fires, because none of its months has "
            "the day of the month it names"
        )
    return CronSchedule(normal, minutes, hours, days, months, weekdays, day_or=day_or)


def _parse_field(text: str, spec: _Field, field: str) -> tuple[int, ...]:
    chosen: set[int] = set()
    for item in field.split(","):
        chosen.update(_parse_item(text, spec, item))
    return tuple(sorted(chosen))


def _parse_item(text: str, spec: _Field, item: str) -> range:
    span, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not step_text.isdecimal() or int(step_text) == 0:
            raise _bad_item(text, spec, item, "the step after '/' must be a whole number above 0")
        step = int(step_text)
    if span == "*":
        return range(spec.low, spec.high + 1, step)
    first_text, dash, last_text = span.partition("-")
    first = _value(text, spec, first_text, item)
    if dash:
        last = _value(text, spec, last_text, item)
        if last < first:
            raise _bad_item(
                text, spec, item, "the range runs backwards: write it low-high, or as a list"
            )
    else:
        # "5/15" means "5-59/15", as in most crons that accept it.
        last = spec.last if slash else first
    return range(first, last + 1, step)


def _value(text: str, spec: _Field, word: str, item: str) -> int:
    if word in spec.names:
        return spec.names[word]
    if not word.isdecimal():
        named = f", a name such as {next(iter(spec.names))!r}" if spec.names else ""
        raise _bad_item(
            text, spec, item, f"use '*', numbers{named}, lists '1,15', ranges '1-5' or steps '*/15'"
        )
    number = int(word)
    if not spec.low <= number <= spec.high:
        raise InvalidInput(
            f"{text!r} is not a schedule: the {spec.name} field allows "
            f"{spec.low}-{spec.high}, not {number}"
        )
    return number


def _bad_item(text: str, spec: _Field, item: str, why: str) -> InvalidInput:
    return InvalidInput(
        f"{text!r} is not a schedule: {item!r} in the {spec.name} field is not valid, {why}"
    )


def _first_at_least(values: tuple[int, ...], lowest: int) -> int | None:
    index = bisect_left(values, lowest)
    return values[index] if index < len(values) else None


def _utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {moment.isoformat()}")
    return moment.astimezone(UTC)


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _ordinal(number: int) -> str:
    suffixes = {1: "st", 2: "nd", 3: "rd"}
    teen = 11 <= number % 100 <= 13  # noqa: PLR2004 - 11th, 12th, 13th
    return f"{number}{'th' if teen else suffixes.get(number % 10, 'th')}"
