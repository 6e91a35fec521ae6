"""Arithmetic on samples: changes over a period. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from datetime import date, datetime

__all__ = ["Change", "Counts", "Sample", "change_between"]


class Counts(Protocol):
    """Anything with an account's three counts (a stored sample, a snapshot)."""

    @property
    def followers(self) -> int:
        """Followers."""

    @property
    def following(self) -> int:
        """Accounts followed."""

    @property
    def statuses(self) -> int:
        """Posts."""


class Sample(Counts, Protocol):
    """One measurement of an account: ``storage.records.SampleRecord`` fits, so do test doubles."""

    @property
    def taken_at(self) -> datetime:
        """When it was measured, timezone-aware."""

    @property
    def last_status_at(self) -> date | None:
        """The day of the latest post, if any."""


@dataclass(frozen=True, slots=True)
class Change:
    """How the counts moved from one sample to a later one."""

    followers: int
    following: int
    statuses: int


def change_between(earlier: Counts | None, later: Counts | None) -> Change | None:
    """``later - earlier`` count by count, or None when either is missing."""
    if earlier is None or later is None:
        return None
    return Change(
        followers=later.followers - earlier.followers,
        following=later.following - earlier.following,
        statuses=later.statuses - earlier.statuses,
    )
