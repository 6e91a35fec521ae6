"""The dashboard's overview of accounts: latest counts, recent changes, sorting and pages (pure).

A change over N days compares an account's latest sample with its newest sample taken at or
before ``now - N days + TOLERANCE``: rounds on a daily schedule start a few seconds apart from
one day to the next, and yesterday's sample must count as a day old. The change is unknown
(None) when there is no such older sample, or when the latest sample is that old sample
itself (no measurement since): an account that stopped answering shows no change, not zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal, get_args

from fedimeter.domain.models import AccountState

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from datetime import datetime

    from fedimeter.storage.records import AccountRecord, SampleRecord

__all__ = [
    "PERIODS",
    "SORT_KEYS",
    "TOLERANCE",
    "AccountRow",
    "Change",
    "Page",
    "SortKey",
    "account_rows",
    "baseline_moments",
    "select_rows",
]

#: The periods of the change columns, in days.
PERIODS = (1, 7, 30)
#: How much younger than N days a sample may be and still count as N days old.
TOLERANCE = timedelta(hours=2)

SortKey = Literal[
    "account",
    "server",
    "followers",
    "change_1",
    "change_7",
    "change_30",
    "following",
    "statuses",
    "last_post",
    "state",
]
SORT_KEYS: tuple[str, ...] = get_args(SortKey)


@dataclass(frozen=True, slots=True)
class Change:
    """How the counts moved since an older sample."""

    followers: int
    following: int
    statuses: int
    since: datetime


@dataclass(frozen=True, slots=True)
class AccountRow:
    """One account in the overview."""

    account: AccountRecord
    latest: SampleRecord | None
    changes: Mapping[int, Change | None]

    @property
    def handle(self) -> str:
        """``user@domain``."""
        return str(self.account.handle).removeprefix("@")

    def change(self, days: int) -> Change | None:
        """The change over ``days`` (one of PERIODS)."""
        return self.changes.get(days)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of rows, and where it stands among all that matched."""

    rows: Sequence[AccountRow]
    matched: int
    total: int
    page: int
    pages: int
    per_page: int


def baseline_moments(now: datetime) -> dict[int, datetime]:
    """For each period, the moment its older sample must be taken at or before."""
    return {days: now - timedelta(days=days) + TOLERANCE for days in PERIODS}


def account_rows(
    listing: Sequence[tuple[AccountRecord, SampleRecord | None]],
    baselines: Mapping[int, Mapping[int, SampleRecord]],
) -> list[AccountRow]:
    """Rows from ``list_accounts`` and, per period, each account's older sample."""
    rows = []
    for account, latest in listing:
        changes: dict[int, Change | None] = {}
        for days in PERIODS:
            older = baselines.get(days, {}).get(account.id)
            if latest is None or older is None or older.taken_at >= latest.taken_at:
                changes[days] = None
            else:
                changes[days] = Change(
                    followers=latest.followers - older.followers,
                    following=latest.following - older.following,
                    statuses=latest.statuses - older.statuses,
                    since=older.taken_at,
                )
        rows.append(AccountRow(account, latest, changes))
    return rows


def select_rows(
    rows: Sequence[AccountRow],
    *,
    text: str = "",
    server: str = "",
    sort: SortKey = "followers",
    descending: bool = True,
    page: int = 1,
    per_page: int = 50,
) -> Page:
    """Filter by ``text`` (in the handle or display name) and ``server``, sort, cut a page.

    Accounts without a value for the sort key come last either way; ties go by handle.
    ``page`` is clamped to the pages there are.
    """
    needle = text.strip().casefold()
    wanted = server.strip().casefold()
    matched = [
        r
        for r in rows
        if (
            not needle
            or needle in r.handle.casefold()
            or needle in r.account.display_name.casefold()
        )
        and (not wanted or r.account.instance_host.casefold() == wanted)
    ]
    key = _SORTERS[sort]
    known = sorted((r for r in matched if key(r) is not None), key=_by_handle)
    known.sort(key=key, reverse=descending)
    unknown = sorted((r for r in matched if key(r) is None), key=_by_handle)
    ordered = known + unknown
    per_page = max(1, per_page)
    pages = max(1, -(-len(ordered) // per_page))
    page = min(max(1, page), pages)
    start = (page - 1) * per_page
    return Page(
        rows=ordered[start : start + per_page],
        matched=len(ordered),
        total=len(rows),
        page=page,
        pages=pages,
        per_page=per_page,
    )


def _by_handle(row: AccountRow) -> str:
    return row.handle.casefold()


def _latest(attribute: str) -> Callable[[AccountRow], Any]:
    def value(row: AccountRow) -> Any:  # noqa: ANN401 - a sort key
        return None if row.latest is None else getattr(row.latest, attribute)

    return value


def _followers_change(days: int) -> Callable[[AccountRow], Any]:
    def value(row: AccountRow) -> Any:  # noqa: ANN401 - a sort key
        change = row.change(days)
        return None if change is None else change.followers

    return value


_STATE_ORDER = {state: i for i, state in enumerate(AccountState)}

_SORTERS: dict[str, Callable[[AccountRow], Any]] = {
    "account": lambda r: r.handle.casefold(),
    "server": lambda r: r.account.instance_host.casefold(),
    "followers": _latest("followers"),
    "change_1": _followers_change(1),
    "change_7": _followers_change(7),
    "change_30": _followers_change(30),
    "following": _latest("following"),
    "statuses": _latest("statuses"),
    "last_post": _latest("last_status_at"),
    # Failing accounts first when descending: the ones needing attention.
    "state": lambda r: (r.account.consecutive_failures, -_STATE_ORDER[r.account.state]),
}
