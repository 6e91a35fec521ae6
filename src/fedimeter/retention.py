"""Downsampling old samples: on demand, and after every round when the settings ask for it.

Off unless ``retention_daily_after_days`` or ``retention_weekly_after_days`` is set. Then
after each finished round (``fedimeter collect``, the server's rounds, the worker that finishes
a shared round) one pass thins what became old enough since the last pass: the marks in
``retention_marks`` say how far each table is thinned already, so a pass reads a day of
samples, not the whole history. ``fedimeter db downsample`` looks at every sample, so it also
thins what the marks cannot know about, and can count first (``--dry-run``). Which samples
survive, and why reports over whole days stay exact: see ``domain/retention.py``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fedimeter.domain.retention import PERIODS, Period, RetentionPolicy
from fedimeter.errors import FedimeterError
from fedimeter.storage.retention import SAMPLE_TABLES, RetentionStore, SampleTable

if TYPE_CHECKING:
    from datetime import datetime

    from fedimeter.config import Settings
    from fedimeter.storage.database import Database

__all__ = [
    "Downsampled",
    "Thinning",
    "downsample",
    "downsample_after_round",
    "policy_from_settings",
]

_LOG = logging.getLogger("fedimeter.retention")


@dataclass(frozen=True, slots=True)
class Thinning:
    """One step of a pass: the samples of one table thinned to one per day or week."""

    table: SampleTable
    period: Period
    #: Samples taken before this were thinned (a period start).
    before: datetime
    #: Samples before this were not looked at (thinned already); None: from the first.
    since: datetime | None
    #: Rows removed, or that would be on a dry run.
    rows: int


@dataclass(frozen=True, slots=True)
class Downsampled:
    """What a pass removed (or, on a dry run, would remove)."""

    policy: RetentionPolicy
    dry_run: bool
    steps: tuple[Thinning, ...]

    def removed(self, table: SampleTable) -> int:
        """Rows of ``table`` removed (or that would be)."""
        return sum(step.rows for step in self.steps if step.table == table)

    @property
    def total(self) -> int:
        """Rows removed (or that would be) over every table."""
        return sum(step.rows for step in self.steps)


def policy_from_settings(settings: Settings) -> RetentionPolicy:
    """The retention the settings ask for (off by default)."""
    return RetentionPolicy(
        daily_after_days=settings.retention_daily_after_days,
        weekly_after_days=settings.retention_weekly_after_days,
    )


async def downsample(
    db: Database,
    policy: RetentionPolicy,
    now: datetime,
    *,
    dry_run: bool = False,
    incremental: bool = False,
) -> Downsampled:
    """Thin the samples of every account and instance as ``policy`` says.

    Samples before the weekly cutoff are thinned to one a week, those from there to the daily
    cutoff to one a day (the weekly samples are a subset of the daily ones, so the two steps
    never count a row twice). ``incremental`` looks only past the marks of earlier passes.
    A pass that is not a dry run moves the marks to its cutoffs when it is done.

    Raises:
        StorageError: the database refused (what earlier chunks removed stays removed; the
            next pass finishes the job).
    """
    if not policy.active:
        return Downsampled(policy, dry_run, ())
    store = RetentionStore(db)
    cutoffs = policy.cutoffs(now)
    marks = await store.marks() if incremental else {}
    steps: list[Thinning] = []
    for table in SAMPLE_TABLES:
        for period in PERIODS:
            before = cutoffs.get(period)
            if before is None:
                continue
            # The weekly step owns everything before its cutoff; the daily step starts there.
            floor = cutoffs.get("week") if period == "day" else None
            since = max(
                (m for m in (marks.get((table, period)), floor) if m is not None), default=None
            )
            rows = 0
            if since is None or since < before:
                rows = await store.thin(table, period, before=before, since=since, dry_run=dry_run)
            steps.append(Thinning(table, period, before, since, rows))
    if not dry_run:
        for step in steps:
            await store.advance_mark(step.table, step.period, step.before, now)
    return Downsampled(policy, dry_run, tuple(steps))


async def downsample_after_round(
    settings: Settings, db: Database, *, now: datetime, logger: logging.Logger = _LOG
) -> Downsampled | None:
    """The pass after a round, when retention is on; None when it is off or failed.

    Every failure is logged, none is raised: thinning old samples must not count as a failed
    round, nor stop the scheduler. The next round's pass picks up where this one stopped.
    """
    policy = policy_from_settings(settings)
    if not policy.active:
        return None
    try:
        result = await downsample(db, policy, now, incremental=True)
    except FedimeterError as exc:
        logger.warning("old samples were not downsampled: %s", exc)
        return None
    except Exception:
        logger.exception("old samples were not downsampled")
        return None
    if result.total:
        logger.info(
            "downsampled old samples (%s): removed %d account samples, %d instance samples",
            policy.describe(),
            result.removed("account_samples"),
            result.removed("instance_samples"),
        )
    return result
