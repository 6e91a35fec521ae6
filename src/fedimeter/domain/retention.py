"""Retention: which old samples downsampling keeps. Pure.

Every figure fedimeter stores is a counter or a gauge read at one moment (followers, posts,
users...), so the last sample of a UTC day is the exact state at the end of that day, and the
samples before it in the day add nothing a daily figure needs. Downsampling keeps, of every
**period** (a UTC day, or an ISO week from Monday 00:00 UTC) that lies wholly before the
period's cutoff, for each account or instance:

- the **last** sample of the period;
- for instances, also the last sample of the period that gave each count (users, posts,
  domains, peers, active users) and the last one taken while the instance was up, because an
  instance report reads the newest sample *that gave the count*, and a period may end with a
  source failing;
- a sample taken at **exactly** the period's start (00:00:00.000000): as much the state at the
  end of the period before as at the start of this one, it is what a report beginning at that
  midnight reads as its base.

So a report between two midnights (``--since``/``--until`` with dates) over daily data, or
between two Monday midnights over weekly data, finds the same base and current samples and
measures the same changes. Trends and charts over such a period see fewer points, and an
account first measured inside the period is measured from its first sample kept. The newest
sample of an account or instance is always the last of its period, so it is never removed.

Cutoffs: ``daily_after_days = N`` thins the days that ended at least N days before now (the
cutoff is the midnight at or before ``now - N days``); ``weekly_after_days = M`` thins the
weeks that ended at least M days before now (the cutoff is the Monday midnight at or before
``now - M days``). M must be more than N when both are set, so data goes from full to daily to
weekly as it ages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Literal

from fedimeter.errors import InvalidInput

__all__ = ["PERIODS", "Period", "RetentionPolicy", "period_start", "retention_problem"]

Period = Literal["day", "week"]

#: The periods, from the coarsest (applied to the oldest samples) to the finest.
PERIODS: tuple[Period, ...] = ("week", "day")


def retention_problem(daily_after_days: int | None, weekly_after_days: int | None) -> str | None:
    """Why these retention ages cannot work together, or None when they can."""
    for name, days in (
        ("retention_daily_after_days", daily_after_days),
        ("retention_weekly_after_days", weekly_after_days),
    ):
        if days is not None and days < 1:
            return f"{name} must be at least 1 day, not {days}"
    if (
        daily_after_days is not None
        and weekly_after_days is not None
        and weekly_after_days <= daily_after_days
    ):
        return (
            f"retention_weekly_after_days ({weekly_after_days}) must be more than"
            f" retention_daily_after_days ({daily_after_days}): samples are thinned to one a day"
            " before they are thinned to one a week"
        )
    return None


def period_start(moment: datetime, period: Period) -> datetime:
    """The start (00:00 UTC; for a week, its Monday) of the period ``moment`` falls in.

    Raises:
        ValueError: ``moment`` is naive.
    """
    if moment.tzinfo is None:
        raise ValueError("period_start needs a timezone-aware datetime")
    day = moment.astimezone(UTC).date()
    if period == "week":
        day -= timedelta(days=day.weekday())
    return datetime.combine(day, time.min, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How old samples are thinned; None turns a period off, both None turn retention off."""

    #: Days that ended at least this many days ago keep one sample each (see the module).
    daily_after_days: int | None = None
    #: Weeks that ended at least this many days ago keep one sample each.
    weekly_after_days: int | None = None

    def __post_init__(self) -> None:
        """Refuse ages that cannot work together.

        Raises:
            InvalidInput: an age is under a day, or the weekly one is not above the daily one.
        """
        problem = retention_problem(self.daily_after_days, self.weekly_after_days)
        if problem is not None:
            raise InvalidInput(problem)

    @property
    def active(self) -> bool:
        """Whether this policy removes anything at all."""
        return self.daily_after_days is not None or self.weekly_after_days is not None

    def cutoffs(self, now: datetime) -> dict[Period, datetime]:
        """For each period turned on, the moment before which samples are thinned to it.

        A cutoff is a period start, so only whole periods are thinned; the weekly cutoff is
        never after the daily one.
        """
        ages: dict[Period, int | None] = {
            "week": self.weekly_after_days,
            "day": self.daily_after_days,
        }
        return {
            period: period_start(now - timedelta(days=days), period)
            for period, days in ages.items()
            if days is not None
        }

    def describe(self) -> str:
        """The policy in a few words, for people."""
        parts = []
        if self.daily_after_days is not None:
            parts.append(f"one sample a day after {self.daily_after_days} days")
        if self.weekly_after_days is not None:
            parts.append(f"one a week after {self.weekly_after_days} days")
        return ", ".join(parts) if parts else "off (every sample is kept)"
