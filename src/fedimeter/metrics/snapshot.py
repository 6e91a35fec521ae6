"""What one scrape exports, read beforehand: plain frozen values, no I/O, no prometheus_client."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime  # noqa: TC003 - dataclass fields are resolved at runtime
from typing import TYPE_CHECKING

from fedimeter.metrics.engagement import EngagementRow  # noqa: TC001 - a dataclass field
from fedimeter.storage.records import (  # noqa: TC001 - dataclass fields are resolved at runtime
    AccountRecord,
    RunRecord,
    SampleRecord,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from fedimeter.domain.instances import InstanceMeasurement

__all__ = [
    "RUNNING",
    "InstanceRow",
    "MetricsSnapshot",
    "TagRow",
    "measured_row",
    "newest_closed_run",
]

#: The status of a round that has not ended (``runs.status``).
RUNNING = "running"


@dataclass(frozen=True, slots=True)
class InstanceRow:
    """One server's own figures at its latest measurement; None where it did not say.

    ``peers`` is the length of the server's peer list, ``domains`` the ``domain_count`` of its
    ``/api/v1/instance``; the week figures are those of the last complete week of
    ``/api/v1/instance/activity``.
    """

    host: str
    software: str | None = None
    version: str | None = None
    up: bool = True
    users: int | None = None
    statuses: int | None = None
    domains: int | None = None
    peers: int | None = None
    active_month: int | None = None
    active_halfyear: int | None = None
    week_statuses: int | None = None
    week_logins: int | None = None
    week_registrations: int | None = None
    measured_at: datetime | None = None

    @property
    def known_peers(self) -> int | None:
        """The servers it knows: the length of its peer list, else its domain count."""
        return self.peers if self.peers is not None else self.domains


@dataclass(frozen=True, slots=True)
class TagRow:
    """One tracked hashtag on one instance: its newest complete day, its day so far, its reads.

    ``tag`` is the key the name compares by (``caturday`` for ``#Caturday``): fixed when the
    tag is added, whatever spelling its server sends later.
    """

    tag: str
    instance: str
    #: The newest complete day and its figures; None until one is stored.
    day: date | None = None
    uses: int | None = None
    accounts: int | None = None
    #: Uses on the server's day in progress when it last answered; None without one.
    uses_so_far: int | None = None
    consecutive_failures: int = 0
    #: When the server last answered about the tag.
    read_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """Everything one scrape exports, read from storage before rendering.

    Attributes:
        accounts: accounts with their latest sample (None when never measured), as
            ``Repository.list_accounts`` returns them.
        last_run: the newest round, whatever its status (a running one included).
        last_finished_run: the newest round that ended: finished, failed or interrupted.
        instances: the measured servers (empty until instances are measured).
        tags: the tracked hashtags, one row per tag and instance.
        engagement: the accounts with engagement on (metrics/engagement.py).
    """

    accounts: list[tuple[AccountRecord, SampleRecord | None]] = field(default_factory=list)
    last_run: RunRecord | None = None
    last_finished_run: RunRecord | None = None
    instances: list[InstanceRow] = field(default_factory=list)
    tags: list[TagRow] = field(default_factory=list)
    engagement: list[EngagementRow] = field(default_factory=list)


def newest_closed_run(runs: Iterable[RunRecord]) -> RunRecord | None:
    """The first round of ``runs`` (newest first) that is no longer running, if any."""
    return next((run for run in runs if run.status != RUNNING), None)


def measured_row(host: str, measurement: InstanceMeasurement) -> InstanceRow:
    """The row exporting ``measurement`` of ``host``, straight from the server, not storage.

    The week figures are those of the newest complete week (the week in progress is never
    used); an instance that answered none of its sources is down and has no figures.
    """
    if not measurement.up:
        return InstanceRow(host=host, up=False, measured_at=measurement.taken_at)
    figures = measurement.figures
    complete = [week for week in measurement.weeks if week.complete]
    week = max(complete, key=lambda w: w.week_start, default=None)
    return InstanceRow(
        host=host,
        software=measurement.software,
        version=measurement.version,
        users=figures.users,
        statuses=figures.statuses,
        domains=figures.domains,
        peers=figures.peers,
        active_month=figures.active_month,
        active_halfyear=figures.active_halfyear,
        week_statuses=None if week is None else week.statuses,
        week_logins=None if week is None else week.logins,
        week_registrations=None if week is None else week.registrations,
        measured_at=measurement.taken_at,
    )
