"""What the delivery tests share: a hand-moved clock, a report, settings with delivery."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from fedimeter.config import Settings, load_settings
from fedimeter.domain.report import AccountHistory, Report, build_report
from fedimeter.storage.records import SampleRecord

NOW = datetime(2026, 4, 1, 3, 5, tzinfo=UTC)


class Clock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime = NOW) -> None:
        """Start at ``now``."""
        self.now = now

    def __call__(self) -> datetime:
        """The time now."""
        return self.now


async def no_sleep(_seconds: float) -> None:
    """Retries in tests do not wait."""


def sample(taken_at: datetime, followers: int, statuses: int = 100) -> SampleRecord:
    """A stored sample."""
    return SampleRecord(1, taken_at, followers, 10, statuses, date(2026, 3, 31), None)


def make_report(accounts: int = 2) -> Report:
    """A 7-day report ending at NOW with ``accounts`` growing accounts."""
    histories = [
        AccountHistory(
            f"user{i}@example.org",
            [sample(NOW - timedelta(days=8), 1000 + i), sample(NOW, 1100 + 2 * i, 120)],
        )
        for i in range(accounts)
    ]
    return build_report(histories, since=NOW - timedelta(days=7), until=NOW, now=NOW)


def with_settings(base: Settings, **values: object) -> Settings:
    """``base`` with delivery settings added."""
    return load_settings(**{**base.model_dump(), **values})
