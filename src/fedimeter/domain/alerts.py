"""Which alert rules fire, judged from the figures the caller loaded. Pure.

An *occurrence* is one thing worth telling once. It has a key that stays the same however
often it is judged, so storage can record each once (``rule``, ``subject``, ``key``):

- **drop** / **rise**: a figure fell (rose) by more than ``percent`` and/or ``count`` over a
  window of ``window`` whole UTC days: from the last value at or before the window's first
  midnight (the state at the end of the day before) to the newest value. The key is the UTC
  day of the newest value, so rounds later the same day repeat the same occurrence; after
  firing, the rule is quiet about that subject until the window has passed (for ``1d``: until
  the next day), so one fall is told once, and a fall spread over two days under the daily
  limit is not told at all. A subject without a value before the window (new, or down all
  the while) is measured from its first value inside it.
- **failing**: a subject was not measured in ``rounds`` rounds in a row. The key is the
  moment the streak began (its first failure), so a streak that ends and starts again is a
  new occurrence, and one that goes on is told once.
- **milestone**: a figure reached a milestone value on the newest value's UTC day (it was
  below it at the end of the day before, or at the first value of the day for a subject new
  that day). The key is the value. Only the highest milestone passed at once is told, and a
  milestone at or below one told before is never told again, even when the figure dipped
  below it and came back: a milestone is reached once. A subject first seen above a
  milestone never reached it while we watched, so nothing is told.

Only values taken in the last ``FRESH`` before ``now`` are judged: a subject that was not
measured lately (failing, or removed) is not compared with itself over stale figures.

**Hashtags** (scope ``tags``) are daily counts, not running totals, so they are judged by
days (``WatchedDays``), and only by *complete* days: the day in progress is partial, and a
day never read is absent, never zero. The day judged is the newest complete day, and only
while it is fresh (it ended less than ``FRESH`` before ``now``, so in practice: yesterday).

- **drop** / **rise**: the sum of the newest ``window`` complete days against the sum of as
  many days just before them, only when every one of those days is stored complete. The key
  is the newest day, so every round of the next day repeats the same occurrence, and the
  rule is quiet about the tag for ``window`` days after it fired, as above.
- **failing**: the tag's rounds in a row that could not read it. Its first failure is not
  stored, so the streak is keyed by the last successful read before it (or, for a tag never
  read, when it was added): the same for the whole streak, new after a success.
- **milestone**: the newest complete day's figure reached a value that no stored day before
  it did (a tag first seen above a value never reached it). Told once ever, as above.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from fedimeter.domain.report import next_milestone

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from fedimeter.domain.alert_rules import AlertKind, AlertRule, AlertScope

__all__ = [
    "FRESH",
    "DayCount",
    "Fired",
    "JSONScalar",
    "Observation",
    "Occurrence",
    "Streak",
    "Subject",
    "Watched",
    "WatchedDays",
    "evaluate",
    "judge_change",
    "judge_day_change",
    "judge_day_milestone",
    "judge_failing",
    "judge_milestone",
    "window_start",
]

#: Values older than this before ``now`` are not judged.
FRESH = timedelta(days=1)

JSONScalar = str | int | float | bool | None

_SINGULAR: dict[str, str] = {"accounts": "account", "instances": "instance", "tags": "tag"}
#: How a figure reads in a sentence.
_NOUNS = {
    "followers": "followers",
    "following": "followed accounts",
    "statuses": "posts",
    "users": "users",
    "domains": "known domains",
    "peers": "peers",
    "active_month": "monthly active users",
    "active_halfyear": "half-year active users",
}
_ARROW = "\u2192"
_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Subject:
    """What a rule watches: an account, an instance, or a hashtag on an instance."""

    scope: AlertScope
    #: Normalised: ``user@host`` in lower case, the host (authority), or a tag's key and its
    #: host (``caturday@mastodon.social``).
    key: str
    #: As people read it: ``@user@host``, the host, or ``#Caturday on mastodon.social``.
    label: str

    @property
    def ref(self) -> str:
        """``account:user@host``, ``instance:host`` or ``tag:key@host``: a stored alert's."""
        return f"{_SINGULAR.get(self.scope, self.scope)}:{self.key}"


@dataclass(frozen=True, slots=True)
class Observation:
    """One measurement: each figure, None where it is unknown (an instance that was down)."""

    taken_at: datetime
    values: Mapping[str, int | None]


@dataclass(frozen=True, slots=True)
class Watched:
    """A subject and its recent measurements, oldest first.

    The caller loads those of the longest window plus the last one before it.
    """

    subject: Subject
    observations: Sequence[Observation]


@dataclass(frozen=True, slots=True)
class DayCount:
    """One stored UTC day of a daily figure (a hashtag's uses and accounts)."""

    day: date
    values: Mapping[str, int | None]
    #: False for a day in progress when it was read: its figures are partial.
    complete: bool


@dataclass(frozen=True, slots=True)
class WatchedDays:
    """A subject measured by the day (a hashtag on an instance) and its stored days.

    The caller loads the days of the longest window twice over, up to ``now``, and the
    highest figures of the stored days before those (for milestones).
    """

    subject: Subject
    #: Oldest first; days never read are absent.
    days: Sequence[DayCount]
    #: The highest value of each figure on any stored day before ``days``; absent: none.
    peaks: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Streak:
    """A subject whose last ``rounds`` rounds all failed to measure it."""

    subject: Subject
    rounds: int
    #: When the first failure of the streak happened; for a hashtag, whose first failure is
    #: not stored, the last successful read before the streak (or when it was added).
    since: datetime
    #: The latest reason, for people.
    reason: str | None = None
    #: A hashtag: when it was last read, or None when it never was.
    last_read: datetime | None = None


@dataclass(frozen=True, slots=True)
class Fired:
    """What fired before, as far as the judging needs it."""

    #: Days of drop and rise occurrences by (rule, subject ref), recent ones at least.
    days: Mapping[tuple[str, str], frozenset[date]] = field(default_factory=dict)
    #: The highest milestone told, by (rule, subject ref).
    milestones: Mapping[tuple[str, str], int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One alert to record (once) and deliver."""

    rule: str
    kind: AlertKind
    subject: Subject
    #: What tells this occurrence from others of the same rule and subject.
    key: str
    #: One line for people.
    text: str
    details: Mapping[str, JSONScalar]

    @property
    def identity(self) -> tuple[str, str, str]:
        """(rule, subject ref, key): the same occurrence has the same identity."""
        return (self.rule, self.subject.ref, self.key)


def evaluate(
    rules: Sequence[AlertRule],
    watched: Iterable[Watched | WatchedDays],
    streaks: Iterable[Streak],
    fired: Fired,
    now: datetime,
) -> list[Occurrence]:
    """Every occurrence the rules see now, rule by rule, subjects in the order given."""
    watched = list(watched)
    streaks = list(streaks)
    found: list[Occurrence] = []
    for rule in rules:
        if rule.kind == "failing":
            for streak in streaks:
                if streak.subject.scope == rule.scope and rule.watches(streak.subject.key):
                    occurrence = judge_failing(rule, streak)
                    if occurrence is not None:
                        found.append(occurrence)
            continue
        for item in watched:
            if item.subject.scope != rule.scope or not rule.watches(item.subject.key):
                continue
            occurrence = _judge(rule, item, fired, now)
            if occurrence is not None:
                found.append(occurrence)
    return found


def _judge(
    rule: AlertRule, item: Watched | WatchedDays, fired: Fired, now: datetime
) -> Occurrence | None:
    """A drop, rise or milestone rule on one subject, measured by samples or by the day."""
    if isinstance(item, WatchedDays):
        if rule.kind == "milestone":
            return judge_day_milestone(rule, item, fired, now)
        return judge_day_change(rule, item, fired, now)
    if rule.kind == "milestone":
        return judge_milestone(rule, item, fired, now)
    return judge_change(rule, item, fired, now)


def window_start(day: date, days: int) -> datetime:
    """The midnight (UTC) that starts a window of ``days`` whole days ending with ``day``."""
    return datetime.combine(day - timedelta(days=days - 1), time.min, tzinfo=UTC)


def _series(item: Watched, metric: str) -> list[tuple[datetime, int]]:
    """The known values of ``metric``, oldest first."""
    points = [(o.taken_at, o.values.get(metric)) for o in item.observations]
    return sorted((t, v) for t, v in points if v is not None)


def _newest_and_base(
    item: Watched, metric: str, now: datetime, days: int
) -> tuple[tuple[datetime, int], tuple[datetime, int], date] | None:
    """The newest fresh value, the value the window starts from, and the newest value's day."""
    series = [(t, v) for t, v in _series(item, metric) if t <= now]
    if not series:
        return None
    current = series[-1]
    if current[0] < now - FRESH:
        return None
    day = current[0].astimezone(UTC).date()
    start = window_start(day, days)
    before = [p for p in series if p[0] <= start]
    inside = [p for p in series if start < p[0]]
    base = before[-1] if before else inside[0]
    if base is current:
        return None
    return current, base, day


def judge_change(rule: AlertRule, item: Watched, fired: Fired, now: datetime) -> Occurrence | None:
    """A ``drop`` or ``rise`` of ``item`` (see the module docstring), or None."""
    metric = rule.metric or ""
    found = _newest_and_base(item, metric, now, rule.window)
    if found is None:
        return None
    (taken, value), (base_taken, base), day = found
    change = base - value if rule.kind == "drop" else value - base
    if change <= 0:
        return None
    if rule.count is not None and not change > rule.count:
        return None
    if rule.percent is not None and (
        base == 0 or not change * 100 > Decimal(str(rule.percent)) * base
    ):
        return None
    earlier = fired.days.get((rule.name, item.subject.ref), frozenset())
    if any(day - timedelta(days=rule.window) < d <= day for d in earlier):
        return None
    percent = round(change * 100 / base, 1) if base else None
    span = _span(base_taken, day, rule.window)
    return Occurrence(
        rule=rule.name,
        kind=rule.kind,
        subject=item.subject,
        key=day.isoformat(),
        text=_change_text(rule, item.subject, base=base, value=value, percent=percent, span=span),
        details={
            "metric": metric,
            "before": base,
            "after": value,
            "change": value - base,
            "percent": None if percent is None else (percent if rule.kind == "rise" else -percent),
            "since": _iso(base_taken),
            "at": _iso(taken),
            "window_days": rule.window,
        },
    )


def _span(since: datetime, day: date, window: int) -> str:
    """``in a day``, ``in 7 days``, or ``since 2026-03-27`` when the start is older.

    The start belongs to the window when it was taken on the day before the window's first
    day or later (rounds at any hour); an older one means rounds were missed.
    """
    start_day = since.astimezone(UTC).date()
    if start_day >= day - timedelta(days=window):
        return "in a day" if window == 1 else f"in {window} days"
    return f"since {start_day.isoformat()}"


def _change_text(
    rule: AlertRule,
    subject: Subject,
    *,
    base: int,
    value: int,
    percent: float | None,
    span: str,
) -> str:
    noun = _NOUNS.get(rule.metric or "", rule.metric or "")
    figures = f"{base:,} {_ARROW} {value:,}"
    if rule.kind == "drop":
        whose = "its" if subject.scope == "instances" else "their"
        share = f"{percent:.1f}%" if percent is not None else f"{base - value:,}"
        return f"{subject.label} lost {share} of {whose} {noun} {span}: {figures}"
    if percent is None:
        return f"{subject.label} went from 0 to {value:,} {noun} {span}"
    return f"{subject.label} gained {percent:.1f}% more {noun} {span}: {figures}"


def judge_milestone(
    rule: AlertRule, item: Watched, fired: Fired, now: datetime
) -> Occurrence | None:
    """A milestone reached by ``item`` on its newest value's day (module docstring), or None."""
    metric = rule.metric or ""
    found = _newest_and_base(item, metric, now, 1)
    if found is None:
        return None
    (taken, value), (_, base), _day = found
    if value <= base:
        return None
    passed = [v for v in rule.values if base < v <= value]
    if rule.round_numbers:
        step = next_milestone(base)
        while step <= value:
            passed.append(step)
            step = next_milestone(step)
    if not passed:
        return None
    top = max(passed)
    if fired.milestones.get((rule.name, item.subject.ref), 0) >= top:
        return None
    noun = _NOUNS.get(metric, metric)
    return Occurrence(
        rule=rule.name,
        kind="milestone",
        subject=item.subject,
        key=str(top),
        text=f"{item.subject.label} reached {top:,} {noun} (now {value:,})",
        details={
            "metric": metric,
            "milestone": top,
            "before": base,
            "after": value,
            "at": _iso(taken),
        },
    )


def judge_failing(rule: AlertRule, streak: Streak) -> Occurrence | None:
    """The streak as an occurrence when it is long enough for ``rule``, else None."""
    if streak.rounds < (rule.rounds or 1):
        return None
    since = streak.since.astimezone(UTC)
    rounds = "1 round" if streak.rounds == 1 else f"{streak.rounds} rounds in a row"
    reason = f": {streak.reason}" if streak.reason else ""
    details: dict[str, JSONScalar] = {
        "rounds": streak.rounds,
        "since": _iso(since),
        "reason": streak.reason,
    }
    if streak.subject.scope == "tags":
        details["last_read"] = None if streak.last_read is None else _iso(streak.last_read)
        last = (
            f"last read {streak.last_read.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
            if streak.last_read is not None
            else f"never read since it was added {since:%Y-%m-%d %H:%M} UTC"
        )
        text = f"{streak.subject.label} could not be read in {rounds}, {last}{reason}"
    else:
        what = (
            "answered none of its sources in"
            if streak.subject.scope == "instances"
            else "could not be measured in"
        )
        text = f"{streak.subject.label} {what} {rounds}, since {since:%Y-%m-%d %H:%M} UTC{reason}"
    return Occurrence(
        rule=rule.name,
        kind="failing",
        subject=streak.subject,
        key=_iso(since),
        text=text,
        details=details,
    )


# -- hashtags: daily counts --------------------------------------------------------------------


def _complete_days(item: WatchedDays, metric: str, now: datetime) -> dict[date, int]:
    """The known figures of the complete days that ended by ``now``."""
    today = now.astimezone(UTC).date()
    found: dict[date, int] = {}
    for day in item.days:
        value = day.values.get(metric)
        if day.complete and day.day < today and value is not None:
            found[day.day] = value
    return found


def _judged_day(known: Mapping[date, int], now: datetime) -> date | None:
    """The newest complete day, when it ended less than ``FRESH`` before ``now``."""
    if not known:
        return None
    day = max(known)
    if datetime.combine(day + _ONE_DAY, time.min, tzinfo=UTC) < now - FRESH:
        return None
    return day


def judge_day_change(
    rule: AlertRule, item: WatchedDays, fired: Fired, now: datetime
) -> Occurrence | None:
    """A ``drop`` or ``rise`` of a daily figure (see the module docstring), or None."""
    metric = rule.metric or ""
    known = _complete_days(item, metric, now)
    day = _judged_day(known, now)
    if day is None:
        return None
    span = rule.window
    newest = [day - timedelta(days=n) for n in range(span)]
    before = [day - timedelta(days=span + n) for n in range(span)]
    if any(d not in known for d in (*newest, *before)):
        return None  # a day never read, or read only in progress: no comparison
    value = sum(known[d] for d in newest)
    base = sum(known[d] for d in before)
    if not _beyond_limits(rule, base, value):
        return None
    earlier = fired.days.get((rule.name, item.subject.ref), frozenset())
    if any(day - timedelta(days=span) < d <= day for d in earlier):
        return None
    percent = round(abs(value - base) * 100 / base, 1) if base else None
    return Occurrence(
        rule=rule.name,
        kind=rule.kind,
        subject=item.subject,
        key=day.isoformat(),
        text=_day_change_text(rule, item.subject, day, base=base, value=value, percent=percent),
        details={
            "metric": metric,
            "before": base,
            "after": value,
            "change": value - base,
            "percent": None if percent is None else (percent if rule.kind == "rise" else -percent),
            "since": before[-1].isoformat(),
            "day": day.isoformat(),
            "window_days": span,
        },
    )


def _beyond_limits(rule: AlertRule, base: int, value: int) -> bool:
    """Whether ``base`` to ``value`` is a drop (rise) by more than the rule's limits."""
    change = base - value if rule.kind == "drop" else value - base
    if change <= 0:
        return False
    if rule.count is not None and not change > rule.count:
        return False
    return rule.percent is None or (base != 0 and change * 100 > Decimal(str(rule.percent)) * base)


def _day_figure(metric: str, value: int) -> str:
    """``412 uses``, ``1 use``, ``58 accounts using it``."""
    if metric == "uses":
        return f"{value:,} use" + ("" if value == 1 else "s")
    if metric == "accounts":
        return f"{value:,} account" + ("" if value == 1 else "s") + " using it"
    return f"{value:,} {metric}"


def _day_change_text(
    rule: AlertRule, subject: Subject, day: date, *, base: int, value: int, percent: float | None
) -> str:
    """``#caturday on host: 412 uses on 2026-12-06, up 180.3 % from 147 the day before``."""
    if rule.window == 1:
        when, earlier = f"on {day.isoformat()}", "the day before"
    else:
        when = f"in the {rule.window} days to {day.isoformat()}"
        earlier = f"in the {rule.window} days before"
    way = "down" if rule.kind == "drop" else "up"
    share = "" if percent is None else f" {percent:.1f}%"
    figure = _day_figure(rule.metric or "", value)
    return f"{subject.label}: {figure} {when}, {way}{share} from {base:,} {earlier}"


def judge_day_milestone(
    rule: AlertRule, item: WatchedDays, fired: Fired, now: datetime
) -> Occurrence | None:
    """A value the newest complete day reached and no stored day before it did, or None.

    Every stored day before counts, the partial ones too (a partial count is at most what
    the day reached); a tag with no stored day before was not seen below the value.
    """
    metric = rule.metric or ""
    known = _complete_days(item, metric, now)
    day = _judged_day(known, now)
    if day is None:
        return None
    value = known[day]
    earlier = [v for d in item.days if d.day < day and (v := d.values.get(metric)) is not None]
    if metric in item.peaks:
        earlier.append(item.peaks[metric])
    if not earlier:
        return None
    peak = max(earlier)
    passed = [v for v in rule.values if peak < v <= value]
    if rule.round_numbers:
        step = next_milestone(peak)
        while step <= value:
            passed.append(step)
            step = next_milestone(step)
    if not passed:
        return None
    top = max(passed)
    if fired.milestones.get((rule.name, item.subject.ref), 0) >= top:
        return None
    reached = _day_figure(metric, top)
    return Occurrence(
        rule=rule.name,
        kind="milestone",
        subject=item.subject,
        key=str(top),
        text=(
            f"{item.subject.label} reached {reached} in a day: {value:,} on {day.isoformat()}"
            f" (the most before: {peak:,})"
        ),
        details={
            "metric": metric,
            "milestone": top,
            "before": peak,
            "after": value,
            "day": day.isoformat(),
        },
    )


def _iso(moment: datetime) -> str:
    """``2026-04-01T03:05:00Z``."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"
