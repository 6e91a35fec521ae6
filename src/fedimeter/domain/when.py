"""Parsing the times people type: ISO dates, ISO datetimes, and ages such as ``30d``."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

from fedimeter.errors import InvalidInput

__all__ = ["parse_period", "parse_when"]

_AGE = re.compile(r"^(\d{1,6})\s*([hdw])$")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def parse_when(text: str, now: datetime, *, end_of_day: bool = False) -> datetime:
    """An aware UTC datetime from ``2026-03-01``, ``2026-03-01T12:00``, ``...Z`` or ``30d``.

    A bare date means the start of that day (UTC), or its last microsecond with
    ``end_of_day`` (so ``--until 2026-03-01`` includes that day). ``30d``, ``12h`` and ``2w``
    count back from ``now``. A datetime without an offset is taken as UTC.

    Raises:
        InvalidInput: the text is none of these.
    """
    value = text.strip()
    age = _AGE.match(value.lower())
    if age:
        try:
            return now - int(age.group(1)) * _UNITS[age.group(2)]
        except OverflowError:
            raise InvalidInput(f"{text!r} reaches back before the year 1") from None
    try:
        if len(value) == 10:  # noqa: PLR2004 - YYYY-MM-DD
            day = date.fromisoformat(value)
            moment = time.max if end_of_day else time.min
            return datetime.combine(day, moment, tzinfo=UTC)
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"{text!r} is not a date: use YYYY-MM-DD, an ISO datetime, or an age like 30d"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_period(
    since: str | None, until: str | None, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """A since/until pair as typed, either end open; ``until`` as a date includes that day.

    Raises:
        InvalidInput: either is not a date or an age, or since is after until.
    """
    start = None if since is None else parse_when(since, now)
    end = None if until is None else parse_when(until, now, end_of_day=True)
    if start is not None and end is not None and start > end:
        raise InvalidInput("since is after until")
    return start, end
