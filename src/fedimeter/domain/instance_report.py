"""A report's lines for tracked instances: users and posts over the period, activity. Pure.

Like an account's line: **current** is the newest sample at or before ``until`` that gave the
count, **base** the newest at or before ``since`` that gave it (else the first inside the
period: the line is then ``partial``), and the change is between the two. Samples where a
source was off, refused or implausible simply lack that count, so a gap never reads as a
drop to zero. The week figures are those of the last **complete** week that started before
``until``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime  # noqa: TC003 - dataclass fields
from typing import TYPE_CHECKING, Protocol

from fedimeter.domain.report import Movement, movement

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = [
    "InstanceLine",
    "InstanceSampleLike",
    "WeekFigures",
    "WeekLike",
    "instance_line",
]


class InstanceSampleLike(Protocol):
    """One stored measurement of an instance (``storage.instances.InstanceSampleRecord``)."""

    @property
    def taken_at(self) -> datetime:
        """When it was measured."""

    @property
    def up(self) -> bool:
        """Whether any source answered."""

    @property
    def software(self) -> str | None:
        """The software's name."""

    @property
    def version(self) -> str | None:
        """The software's version."""

    @property
    def users(self) -> int | None:
        """Registered users, if known."""

    @property
    def statuses(self) -> int | None:
        """Posts, if known."""

    @property
    def active_month(self) -> int | None:
        """Users active in the last 30 days, if known."""


class WeekLike(Protocol):
    """One stored week of activity."""

    @property
    def week_start(self) -> date:
        """The week's first day."""

    @property
    def statuses(self) -> int:
        """Posts that week."""

    @property
    def logins(self) -> int:
        """Logins that week."""

    @property
    def registrations(self) -> int:
        """Registrations that week."""

    @property
    def complete(self) -> bool:
        """False for the week in progress."""


@dataclass(frozen=True, slots=True)
class WeekFigures:
    """A complete week's activity."""

    week_start: date
    statuses: int
    logins: int
    registrations: int


@dataclass(frozen=True, slots=True)
class InstanceLine:
    """One instance in a report; counts are None when no sample gave them."""

    host: str
    software: str | None
    version: str | None
    #: When the newest sample up to ``until`` was taken, and whether the instance was up then.
    measured_at: datetime | None
    up: bool | None
    users: Movement | None
    statuses: Movement | None
    #: Some count starts inside the period (no sample gave it at or before ``since``).
    partial: bool
    active_month: int | None
    last_week: WeekFigures | None

    @property
    def has_data(self) -> bool:
        """Whether any sample up to ``until`` exists."""
        return self.measured_at is not None


def _count_movement(
    samples: Sequence[InstanceSampleLike],
    value: Callable[[InstanceSampleLike], int | None],
    since: datetime,
) -> tuple[Movement | None, bool]:
    """The movement of one count over samples sorted by time, and whether it is partial."""
    known = [(s.taken_at, v) for s in samples if (v := value(s)) is not None]
    if not known:
        return None, False
    current = known[-1]
    before = [pair for pair in known if pair[0] <= since]
    base = before[-1] if before else known[0]
    return movement(base[1], current[1], current[0] - base[0]), not before


def instance_line(
    host: str,
    samples: Sequence[InstanceSampleLike],
    weeks: Sequence[WeekLike],
    *,
    since: datetime,
    until: datetime,
) -> InstanceLine:
    """The report line of one instance over ``(since, until]`` (see the module docstring)."""
    upto = sorted((s for s in samples if s.taken_at <= until), key=lambda s: s.taken_at)
    users, users_partial = _count_movement(upto, lambda s: s.users, since)
    statuses, statuses_partial = _count_movement(upto, lambda s: s.statuses, since)
    newest = upto[-1] if upto else None
    active = next((s.active_month for s in reversed(upto) if s.active_month is not None), None)
    complete = [w for w in weeks if w.complete and w.week_start <= until.date()]
    last = max(complete, key=lambda w: w.week_start, default=None)
    return InstanceLine(
        host=host,
        software=None if newest is None else newest.software,
        version=None if newest is None else newest.version,
        measured_at=None if newest is None else newest.taken_at,
        up=None if newest is None else newest.up,
        users=users,
        statuses=statuses,
        partial=users_partial or statuses_partial,
        active_month=active,
        last_week=None
        if last is None
        else WeekFigures(last.week_start, last.statuses, last.logins, last.registrations),
    )
