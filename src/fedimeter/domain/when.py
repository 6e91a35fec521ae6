"""Parsing the times people type: ISO dates, ISO datetimes, and ages such as ``30d``.

Every moment typed is kept within ``FIRST_DAY`` .. ``LAST_DAY`` (1970-01-01 to 2999-12-31,
UTC): nothing fedimeter measures can be older than the Unix epoch, nor centuries ahead, and a
period's arithmetic (a period as long before it, its last day's end, a week's Monday) then
never leaves Python's calendar (years 1 to 9999). The API, the CLI and the dashboard read
their dates here, so the bounds and their messages are the same everywhere.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

from fedimeter.errors import InvalidInput

__all__ = [
    "EARLIEST",
    "FIRST_DAY",
    "LAST_DAY",
    "LATEST",
    "check_moment",
    "earlier",
    "later",
    "parse_period",
    "parse_when",
]

#: The first and last day a moment typed may fall on (UTC).
FIRST_DAY: Final = date(1970, 1, 1)
LAST_DAY: Final = date(2999, 12, 31)
#: The first and last moment a moment typed may be.
EARLIEST: Final = datetime.combine(FIRST_DAY, time.min, tzinfo=UTC)
LATEST: Final = datetime.combine(LAST_DAY, time.max, tzinfo=UTC)

_AGE = re.compile(r"^(\d{1,6})\s*([hdw])$")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
_CALENDAR_START: Final = datetime.min.replace(tzinfo=UTC)
_CALENDAR_END: Final = datetime.max.replace(tzinfo=UTC)


def parse_when(text: str, now: datetime, *, end_of_day: bool = False) -> datetime:
    """An aware UTC datetime from ``2026-03-01``, ``2026-03-01T12:00``, ``...Z`` or ``30d``.

    A bare date means the start of that day (UTC), or its last microsecond with
    ``end_of_day`` (so ``--until 2026-03-01`` includes that day). ``30d``, ``12h`` and ``2w``
    count back from ``now``. A datetime without an offset is taken as UTC.

    Raises:
        InvalidInput: the text is none of these, or its moment is outside ``EARLIEST`` ..
            ``LATEST`` (see ``check_moment``).
    """
    value = text.strip()
    age = _AGE.match(value.lower())
    if age:
        back = int(age.group(1)) * _UNITS[age.group(2)]
        if now - EARLIEST < back:
            raise InvalidInput(
                f"{text!r} reaches back before {FIRST_DAY}, where fedimeter's dates begin:"
                f" give {FIRST_DAY} for everything"
            )
        return check_moment(now - back, text)
    try:
        if len(value) == 10:  # noqa: PLR2004 - YYYY-MM-DD
            day = date.fromisoformat(value)
            moment = time.max if end_of_day else time.min
            return check_moment(datetime.combine(day, moment, tzinfo=UTC), text)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"{text!r} is not a date: use YYYY-MM-DD, an ISO datetime, or an age like 30d"
        ) from None
    if parsed.tzinfo is None:
        return check_moment(parsed.replace(tzinfo=UTC), text)
    try:
        return check_moment(parsed.astimezone(UTC), text)
    except OverflowError:  # year 1 or 9999 pushed past the calendar by its offset
        # Its wall time is as far outside the bounds as the moment: refused with the same words.
        return check_moment(parsed.replace(tzinfo=UTC), text)


def check_moment(moment: datetime, text: str | None = None) -> datetime:
    """``moment`` when it lies within ``EARLIEST`` .. ``LATEST``; compared in UTC.

    ``text`` is what was typed, for the message (the moment itself when None).

    Raises:
        InvalidInput: it is earlier or later, in one line naming the bounds.
    """
    shown = repr(text) if text is not None else moment.isoformat()
    if moment < EARLIEST:
        raise InvalidInput(
            f"{shown} is before {FIRST_DAY}: dates run from {FIRST_DAY} to {LAST_DAY}"
        )
    if moment > LATEST:
        raise InvalidInput(f"{shown} is after {LAST_DAY}: dates run from {FIRST_DAY} to {LAST_DAY}")
    return moment


def earlier(moment: datetime, span: timedelta) -> datetime:
    """``moment - span``, or the calendar's first moment when that is before the year 1.

    For arithmetic around a period (a base looked for before it) that must not overflow.
    """
    if moment - _CALENDAR_START.replace(tzinfo=moment.tzinfo) <= span:
        return _CALENDAR_START.replace(tzinfo=moment.tzinfo)
    return moment - span


def later(moment: datetime, span: timedelta) -> datetime:
    """``moment + span``, or the calendar's last moment when that is after the year 9999."""
    if _CALENDAR_END.replace(tzinfo=moment.tzinfo) - moment <= span:
        return _CALENDAR_END.replace(tzinfo=moment.tzinfo)
    return moment + span


def parse_period(
    since: str | None, until: str | None, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """A since/until pair as typed, either end open; ``until`` as a date includes that day.

    Raises:
        InvalidInput: either is not a date or an age, is outside ``EARLIEST`` .. ``LATEST``,
            or since is after until.
    """
    start = None if since is None else parse_when(since, now)
    end = None if until is None else parse_when(until, now, end_of_day=True)
    if start is not None and end is not None and start > end:
        raise InvalidInput("since is after until")
    return start, end
