"""mastodon-meter's text formats: its timestamps, metering ids and summary report.

fedimeter serves mastodon-meter's HTTP API (``api/compat.py``); the text that API returns is
built here, so the exact format can be tested without a server. Pure: no I/O, no clock (the
caller passes the generation time).

The summary report, as mastodon-meter writes it::

    Mastodon-meter summary report generated on 2021.09.01 09:00 UTC

    alice@mastodon.social: 102 (+3) subscribers, 2000 (+2) statuses
    bob@mastodon.social: 94 subscribers, 735 statuses
    No records to display for carol@mastodon.social

A title line, a blank line, then one line per account in the order given; no trailing newline
(with no account at all, the text is the title and one newline). A change in parentheses is
the difference from the account's previous sample, shown only when it is not zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "Counts",
    "ReportEntry",
    "metering_id",
    "mm_timestamp",
    "render_report",
    "report_line",
    "report_title",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Counts:
    """The two figures mastodon-meter keeps of a sample."""

    subscribers: int
    statuses: int


@dataclass(frozen=True, slots=True)
class ReportEntry:
    """One account in the report: its address and its latest and previous counts.

    ``latest`` is None for an account never measured; ``previous`` is None when the account
    has one sample only.
    """

    address: str
    latest: Counts | None
    previous: Counts | None = None


def _utc(moment: datetime) -> datetime:
    """``moment`` in UTC, without its time zone.

    Raises:
        ValueError: ``moment`` is naive (fedimeter's times are always aware).
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive datetime: pass a timezone-aware one")
    return moment.astimezone(UTC).replace(tzinfo=None)


def mm_timestamp(moment: datetime) -> str:
    """``2021-01-01 12:00:00.000000``: naive UTC, always with microseconds.

    mastodon-meter's documentation shows this form; its code printed ``str(datetime)``, which
    drops ``.000000`` when the microseconds are zero. This always writes them.

    Raises:
        ValueError: ``moment`` is naive.
    """
    return _utc(moment).isoformat(sep=" ", timespec="microseconds")


def metering_id(account_id: int, taken_at: datetime) -> str:
    """A stable id for one sample: ``<account id>-<unix time in microseconds>``.

    fedimeter keys a sample by its account and the moment it was taken, so this names exactly
    one sample and stays the same across requests.

    Raises:
        ValueError: ``taken_at`` is naive.
    """
    if taken_at.tzinfo is None or taken_at.utcoffset() is None:
        raise ValueError("naive datetime: pass a timezone-aware one")
    return f"{account_id}-{(taken_at - _EPOCH) // _MICROSECOND}"


def report_title(generated_at: datetime) -> str:
    """``Mastodon-meter summary report generated on 2021.09.01 09:00 UTC``.

    Raises:
        ValueError: ``generated_at`` is naive.
    """
    t = _utc(generated_at)
    return (
        "Mastodon-meter summary report generated on "
        f"{t.year:04d}.{t.month:02d}.{t.day:02d} {t.hour:02d}:{t.minute:02d} UTC"
    )


def _change(latest: int, previous: int | None) -> str:
    """`` (+2)``, `` (-2)``, or nothing when unchanged or when there is no previous value."""
    if previous is None or latest == previous:
        return ""
    return f" ({latest - previous:+d})"


def report_line(entry: ReportEntry) -> str:
    """One account's line: ``name@host: 102 (+3) subscribers, 2000 (+2) statuses``."""
    latest, previous = entry.latest, entry.previous
    if latest is None:
        return f"No records to display for {entry.address}"
    subscribers = _change(latest.subscribers, None if previous is None else previous.subscribers)
    statuses = _change(latest.statuses, None if previous is None else previous.statuses)
    return (
        f"{entry.address}: {latest.subscribers}{subscribers} subscribers,"
        f" {latest.statuses}{statuses} statuses"
    )


def render_report(entries: Iterable[ReportEntry], generated_at: datetime) -> str:
    """The whole report: title, blank line, one line per entry in order, no final newline.

    Raises:
        ValueError: ``generated_at`` is naive.
    """
    return "\n".join([f"{report_title(generated_at)}\n", *map(report_line, entries)])
