"""A report's lines for tracked hashtags: uses over the period's whole days, against before. Pure.

A tag's figures are daily counts, not running totals, so its line sums days rather than
comparing two samples: **uses** over as many complete UTC days as the period is long, ending
with the last day wholly before ``until`` (``whole_days``), the **average accounts a day**
over those days, the **busiest day**, and the same sum over as many days just before them
(**before**) for the change. A day no answer covered is not a zero: ``days_known`` says how
many of the period's days are known, and the change is given only when both periods are
known in full. The day still going on at
``until`` is not in the sums; it is shown on its own (``so_far``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["TagDayLike", "TagLine", "tag_line", "whole_days"]

_ONE_DAY = timedelta(days=1)
_ONE_MICROSECOND = timedelta(microseconds=1)


class TagDayLike(Protocol):
    """One stored day of a tag (``storage.tags.TagDayRecord``)."""

    @property
    def day(self) -> date:
        """The UTC day."""

    @property
    def uses(self) -> int:
        """Posts that used the tag."""

    @property
    def accounts(self) -> int:
        """Accounts that used it."""

    @property
    def complete(self) -> bool:
        """False for the day in progress."""


@dataclass(frozen=True, slots=True)
class TagLine:
    """One hashtag on one instance in a report."""

    name: str
    host: str
    #: Whole UTC days in the period, and how many of them are known (complete and stored).
    days: int
    days_known: int
    #: Uses over the known days; None when no day is known.
    uses: int | None
    #: Average accounts a day over the known days.
    accounts_per_day: float | None
    #: The day with the most uses, and its uses.
    busiest: tuple[date, int] | None
    #: Uses over as many days just before the period, when every one of them is known.
    before: int | None
    #: The day in progress at ``until``, when stored: its day, uses and accounts so far.
    so_far: tuple[date, int, int] | None
    #: Rounds in a row that could not read the tag, and the last reason.
    failures: int = 0
    last_error: str | None = None

    @property
    def change(self) -> int | None:
        """Uses against the days before; None unless both periods are known in full."""
        if self.before is None or self.uses is None or self.days_known != self.days:
            return None
        return self.uses - self.before

    @property
    def percent(self) -> float | None:
        """``change`` in percent of the days before; None when that is unknown or zero."""
        change = self.change
        if change is None or not self.before:
            return None
        return change * 100 / self.before

    @property
    def label(self) -> str:
        """``#name on host``."""
        return f"#{self.name} on {self.host}"


def whole_days(since: datetime, until: datetime) -> list[date]:
    """The UTC days a period's hashtag figures sum, oldest first.

    As many whole days as the period is long, ending with the last day wholly before its
    end: a 7-day report made at noon sums the 7 days before today (today is still going on),
    like ``tag list``'s 7 days; an end at a day's last moment (``--until 2026-03-31``)
    includes that day. A period shorter than a day has none.
    """
    since, until = since.astimezone(UTC), until.astimezone(UTC)
    end = until + _ONE_MICROSECOND  # 23:59:59.999999 ends its day
    last = end.date() - _ONE_DAY
    count = (end - since) // _ONE_DAY
    return [last - timedelta(days=n) for n in range(count - 1, -1, -1)]


def tag_line(
    name: str,
    host: str,
    days: Sequence[TagDayLike],
    *,
    since: datetime,
    until: datetime,
    failures: int = 0,
    last_error: str | None = None,
) -> TagLine:
    """The report line of one tag over ``[since, until]`` (see the module docstring).

    ``days`` should reach back a period's length before ``since`` for the change.
    """
    period = whole_days(since, until)
    complete = {d.day: d for d in days if d.complete}
    known = [complete[day] for day in period if day in complete]
    earlier = [period[0] - timedelta(days=n) for n in range(len(period), 0, -1)] if period else []
    before = (
        sum(complete[day].uses for day in earlier)
        if earlier and all(day in complete for day in earlier)
        else None
    )
    going = next(
        (d for d in days if not d.complete and d.day == until.astimezone(UTC).date()), None
    )
    busiest = max(known, key=lambda d: (d.uses, d.day), default=None)
    return TagLine(
        name=name,
        host=host,
        days=len(period),
        days_known=len(known),
        uses=sum(d.uses for d in known) if known else None,
        accounts_per_day=sum(d.accounts for d in known) / len(known) if known else None,
        busiest=None if busiest is None else (busiest.day, busiest.uses),
        before=before,
        so_far=None if going is None else (going.day, going.uses, going.accounts),
        failures=failures,
        last_error=last_error,
    )
