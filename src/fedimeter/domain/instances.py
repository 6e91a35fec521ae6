"""What one measurement of an instance says, and which of its figures are believable. Pure.

An instance is measured from every source it offers (NodeInfo, ``/api/v1/instance``,
``/api/v2/instance``, ``/api/v1/instance/peers``, ``/api/v1/instance/activity``); each source
ends with a ``SourceResult``, the figures they gave are merged into ``InstanceFigures``.

Some servers serve numbers that are not true on purpose (GoToSocial's ``instance-stats-mode``
zeroes or randomises them, others hide them), and any server can send nonsense. ``plausible``
replaces a figure with ``None`` (unknown) when:

- it is negative: no count can be;
- it is above ``MAX_FIGURE`` (10^10): no server holds that many users, posts or peers;
- compared with the previous measurement's figure:

  - it reads 0, or fell to a hundredth or less, where the previous value was above
    ``LARGE`` (100): users are rarely deleted and posts and peers not by the hundred-fold,
    whereas a small server's handful of test accounts may well go;
  - it rose a hundred-fold or more (from 0 counting as from 1) to above ``RISE_FLOOR``
    (10,000): a young server can go from a handful to thousands of posts or peers (one relay)
    in a day, but not to tens of thousands;

- it contradicts another figure of the same measurement: ``active_month`` above ``users``,
  ``active_halfyear`` above ``users``, ``active_halfyear`` below ``active_month`` (every user
  active this month was active this half-year). The activity figure is rejected: the totals
  are the more robust numbers.

Values compared with ``previous`` are taken as they were stored: a figure rejected last time
is ``None`` there and compares with nothing, so a real step change is believed one
measurement later.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime  # noqa: TC003 - dataclass fields are resolved at runtime
from typing import Literal, get_args

__all__ = [
    "FIGURE_NAMES",
    "JUMP",
    "LARGE",
    "MAX_FIGURE",
    "RISE_FLOOR",
    "SOURCE_NAMES",
    "FigureName",
    "InstanceFigures",
    "InstanceMeasurement",
    "SourceName",
    "SourceResult",
    "SourceStatus",
    "WeekActivity",
    "judge",
    "plausible",
]

SourceName = Literal["nodeinfo", "instance_v1", "instance_v2", "peers", "activity"]
#: ``missing``: 404/410 (turned off, or not this software); ``denied``: 401/403 (limited
#: federation); ``failed``: 5xx, timeouts or resets after retries, malformed or non-JSON
#: answers; ``implausible``: answered, but some of its values are not believable.
SourceStatus = Literal["ok", "missing", "denied", "failed", "implausible"]
FigureName = Literal["users", "statuses", "domains", "peers", "active_month", "active_halfyear"]

#: Every source, in the order a measurement lists them.
SOURCE_NAMES: tuple[SourceName, ...] = get_args(SourceName)
#: Every figure, in the order of ``InstanceFigures``.
FIGURE_NAMES: tuple[FigureName, ...] = get_args(FigureName)

#: Above this no figure is real: the largest servers count about 10^6 users and 10^9 posts.
MAX_FIGURE = 10**10
#: A previous value above this is large enough that falling to zero (or a hundredth) is news.
LARGE = 100
#: Rises and falls by this factor or more are not believed (see the module docstring).
JUMP = 100
#: A rise by ``JUMP`` is believed while the new value stays at or below this.
RISE_FLOOR = 10_000


@dataclass(frozen=True, slots=True)
class SourceResult:
    """How one source of an instance answered."""

    source: SourceName
    status: SourceStatus
    #: One readable sentence for people; ``""`` when ok.
    detail: str = ""


@dataclass(frozen=True, slots=True)
class WeekActivity:
    """One week of ``/api/v1/instance/activity``."""

    #: The UTC day the week starts (from the bucket's Unix seconds).
    week_start: date
    statuses: int
    logins: int
    registrations: int
    #: False for the current, incomplete week (the newest bucket).
    complete: bool


@dataclass(frozen=True, slots=True)
class InstanceFigures:
    """What one measurement says; ``None`` is unknown, not offered or not believable."""

    #: NodeInfo ``usage.users.total``, else ``/api/v1/instance`` ``stats.user_count``.
    users: int | None = None
    #: ``stats.status_count``, else NodeInfo ``usage.localPosts``.
    statuses: int | None = None
    #: ``stats.domain_count``.
    domains: int | None = None
    #: How many domains ``/api/v1/instance/peers`` lists.
    peers: int | None = None
    #: ``/api/v2/instance`` ``usage.users.active_month``, else NodeInfo ``activeMonth``.
    active_month: int | None = None
    #: NodeInfo ``activeHalfyear``.
    active_halfyear: int | None = None

    def get(self, name: FigureName) -> int | None:
        """The figure called ``name``."""
        value: int | None = getattr(self, name)
        return value


@dataclass(frozen=True, slots=True)
class InstanceMeasurement:
    """Everything one measurement of an instance found, source by source."""

    taken_at: datetime
    software: str | None
    version: str | None
    open_registrations: bool | None
    figures: InstanceFigures
    #: Oldest first; the newest is the week in progress.
    weeks: tuple[WeekActivity, ...]
    #: One per source, in ``SOURCE_NAMES`` order.
    sources: tuple[SourceResult, ...]

    @property
    def up(self) -> bool:
        """Whether the instance answered: at least one source gave a usable answer.

        An ``implausible`` source answered too (with some values not believed), so it counts.
        """
        return any(s.status in {"ok", "implausible"} for s in self.sources)


def plausible(
    figures: InstanceFigures, previous: InstanceFigures | None
) -> tuple[InstanceFigures, list[str]]:
    """``figures`` with every unbelievable value replaced by ``None`` (rules: module docstring).

    Returns:
        The believable figures, and one sentence per rejected value, in figure order.
    """
    rejected = judge(figures, previous)
    cleaned = replace(figures, **dict.fromkeys(rejected))
    return cleaned, list(rejected.values())


def judge(figures: InstanceFigures, previous: InstanceFigures | None) -> dict[FigureName, str]:
    """Which figures ``plausible`` rejects, and why.

    Returns:
        The rejected figures' names (in figure order) with one sentence each.
    """
    rejected: dict[FigureName, str] = {}
    for name in FIGURE_NAMES:
        value = figures.get(name)
        if value is None:
            continue
        before = previous.get(name) if previous is not None else None
        reason = _alone(name, value) or _against(name, value, before)
        if reason is not None:
            rejected[name] = reason

    def kept(name: FigureName) -> int | None:
        return None if name in rejected else figures.get(name)

    users, month, halfyear = kept("users"), kept("active_month"), kept("active_halfyear")
    if month is not None and users is not None and month > users:
        rejected["active_month"] = (
            f"active_month is {month:,}, more than the {users:,} users the server has"
        )
        month = None
    if halfyear is not None and users is not None and halfyear > users:
        rejected["active_halfyear"] = (
            f"active_halfyear is {halfyear:,}, more than the {users:,} users the server has"
        )
    elif halfyear is not None and month is not None and halfyear < month:
        rejected["active_halfyear"] = (
            f"active_halfyear is {halfyear:,}, fewer than the {month:,} active this month"
        )
    return {name: rejected[name] for name in FIGURE_NAMES if name in rejected}


def _alone(name: FigureName, value: int) -> str | None:
    """Why ``value`` cannot be true whatever came before, or ``None``."""
    if value < 0:
        return f"{name} is {value:,}: a count cannot be negative"
    if value > MAX_FIGURE:
        return f"{name} is {value:,}, more than any server has"
    return None


def _against(name: FigureName, value: int, before: int | None) -> str | None:
    """Why ``value`` cannot follow ``before``, or ``None``."""
    if before is None or before < 0:
        return None
    if before > LARGE and value == 0:
        return (
            f"{name} reads 0 where the previous measurement read {before:,} "
            "(some servers hide their statistics this way)"
        )
    if before > LARGE and value * JUMP <= before:
        return f"{name} fell from {before:,} to {value:,}, a hundredth or less, since last time"
    if value > RISE_FLOOR and value >= JUMP * max(before, 1):
        return f"{name} rose from {before:,} to {value:,}, a hundred-fold or more, since last time"
    return None
