"""What the hashtag pages show, from stored days: pure, no I/O.

A day no answer covered is a row without figures ("not recorded"), never a zero; the day in
progress is shown as "so far"; a week's total says how many of its days it adds up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from fedimeter.storage.tags import TagDayRecord, TagRecord

__all__ = ["WEEK_DAYS", "DayRow", "TagLine", "WeekTotal", "day_rows", "tag_lines", "week_total"]

#: Complete days a week's total adds up: the seven before today.
WEEK_DAYS = 7


@dataclass(frozen=True, slots=True)
class DayRow:
    """One day of a tag's page: its figures, or none when no answer covered it."""

    day: date
    uses: int | None = None
    accounts: int | None = None
    #: False for the day in progress (and for a day not recorded).
    complete: bool = False
    #: An incomplete day that is today: still counting. An incomplete day before today was
    #: in progress at a reading no later one followed (the server was down past its end):
    #: its figures stop at ``read_at``.
    in_progress: bool = False
    read_at: datetime | None = None

    @property
    def recorded(self) -> bool:
        """Whether an answer covered the day."""
        return self.uses is not None

    @property
    def note(self) -> str:
        """``so far``, ``incomplete: read until 03:00 UTC``, ``not recorded`` or ""."""
        if not self.recorded:
            return "not recorded"
        if self.complete:
            return ""
        if self.in_progress or self.read_at is None:
            return "so far"
        return f"incomplete: read until {self.read_at.astimezone(UTC):%H:%M} UTC"


@dataclass(frozen=True, slots=True)
class WeekTotal:
    """The uses of the complete days among the last ``WEEK_DAYS`` before today."""

    uses: int
    #: How many of those days are recorded and complete (the rest are gaps).
    days: int

    @property
    def whole(self) -> bool:
        """Whether every day of the week is in the total."""
        return self.days == WEEK_DAYS


@dataclass(frozen=True, slots=True)
class TagLine:
    """One row of the hashtags page."""

    tag: TagRecord
    done: TagDayRecord | None
    going: TagDayRecord | None
    week: WeekTotal | None
    today: date

    @property
    def going_today(self) -> bool:
        """Whether the day in progress is today's (else the tag was not read since)."""
        return self.going is not None and self.going.day == self.today


def day_rows(
    days: Sequence[TagDayRecord], first: date, last: date, *, limit: int, today: date
) -> list[DayRow]:
    """Every day from ``last`` back to ``first``, newest first, at most ``limit`` of them.

    A day with no stored row is a ``DayRow`` without figures; only an incomplete ``today``
    is in progress (an older incomplete day stopped where it was last read).
    """
    stored = {day.day: day for day in days}
    rows: list[DayRow] = []
    current = last
    while current >= first and len(rows) < limit:
        found = stored.get(current)
        rows.append(
            DayRow(current)
            if found is None
            else DayRow(
                current,
                found.uses,
                found.accounts,
                complete=found.complete,
                in_progress=not found.complete and current == today,
                read_at=found.updated_at,
            )
        )
        if current == date.min:
            break
        current -= timedelta(days=1)
    return rows


def week_total(days: Sequence[TagDayRecord], today: date) -> WeekTotal | None:
    """The complete days' uses over the ``WEEK_DAYS`` days before ``today``; None without any."""
    start = today - timedelta(days=WEEK_DAYS)
    counted = [day for day in days if day.complete and start <= day.day < today]
    if not counted:
        return None
    return WeekTotal(sum(day.uses for day in counted), len(counted))


def tag_lines(
    latest: Sequence[tuple[TagRecord, TagDayRecord | None, TagDayRecord | None]],
    recent: Mapping[int, Sequence[TagDayRecord]],
    today: date,
) -> list[TagLine]:
    """The hashtags page's rows: each tag with its newest days and its week's total.

    ``recent`` holds each tag's days of the last week or more (``TagStore.histories``).
    """
    return [
        TagLine(tag, done, going, week_total(recent.get(tag.id, ()), today), today)
        for tag, done, going in latest
    ]
