"""Engagement in ``/metrics``: one series per account with engagement on, never one per post.

The figures are those of the account's own posts of the last ``WINDOW`` (7 days) before the
scrape, with their counts as last read (docs/engagement.md): a gauge that moves as posts
enter and leave the window and as their counts grow. Labels are the account's ``acct`` and
home host, as for the other account families: bounded by the accounts a person chose, and
nothing a server sends (a post's id, text or link) ever becomes a label.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily

from fedimeter.clock import Clock, utc_now
from fedimeter.domain.engagement import engagement_figures
from fedimeter.storage.engagement import EngagementStore

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from prometheus_client import Metric

    from fedimeter.storage.repository import Repository

__all__ = ["WINDOW", "EngagementRow", "engagement_families", "engagement_rows"]

#: The posts the exported figures are of: those of the last 7 days.
WINDOW = timedelta(days=7)
_ACCOUNT = ("account", "instance")


@dataclass(frozen=True, slots=True)
class EngagementRow:
    """One account with engagement on: its last reading and its last 7 days' figures."""

    account: str
    instance: str
    #: Own posts (posts and replies) of the last 7 days, and what they received.
    posts: int
    interactions: int
    #: Interactions per own post over followers, in percent; None without either.
    rate: float | None
    read_at: datetime | None
    last_requests: int
    consecutive_failures: int


async def engagement_rows(repo: Repository, *, clock: Clock = utc_now) -> list[EngagementRow]:
    """The accounts with engagement on, with the figures of their last 7 days' posts.

    Raises:
        StorageError: the database is unavailable.
    """
    store = EngagementStore(repo.db)
    now = clock()
    rows = []
    for state in await store.accounts():
        account = state.account
        statuses = await store.statuses(account.id, now - WINDOW)
        followers = await store.followers(account.id, now - WINDOW, now)
        figures = engagement_figures(
            statuses, followers, since=now - WINDOW, until=now, top=0, read_at=state.read_at
        )
        rows.append(
            EngagementRow(
                account=account.handle.acct,
                instance=account.instance_host,
                posts=figures.own,
                interactions=figures.interactions,
                rate=figures.rate,
                read_at=state.read_at,
                last_requests=state.last_requests,
                consecutive_failures=state.consecutive_failures,
            )
        )
    return rows


def engagement_families(rows: Sequence[EngagementRow]) -> Iterator[Metric]:
    """The engagement families; without an account with engagement on, no series at all."""
    posts = GaugeMetricFamily(
        "fedimeter_account_engagement_posts",
        "Own posts (posts and replies) of the account in the last 7 days, as last read.",
        labels=_ACCOUNT,
    )
    interactions = GaugeMetricFamily(
        "fedimeter_account_engagement_interactions",
        "Favourites, boosts and replies received by the account's posts of the last 7 days,"
        " as last read (still growing while the posts are read).",
        labels=_ACCOUNT,
    )
    rate = GaugeMetricFamily(
        "fedimeter_account_engagement_rate_percent",
        "Interactions per post over followers, in percent, for the account's posts of the last"
        " 7 days; absent without a post or followers.",
        labels=_ACCOUNT,
    )
    read = GaugeMetricFamily(
        "fedimeter_account_engagement_read_timestamp_seconds",
        "When the account's timeline was last read.",
        labels=_ACCOUNT,
    )
    requests = GaugeMetricFamily(
        "fedimeter_account_engagement_read_requests",
        "Requests the last reading of the account's timeline cost (40 posts a request).",
        labels=_ACCOUNT,
    )
    failures = GaugeMetricFamily(
        "fedimeter_account_engagement_consecutive_failures",
        "Readings of the account's timeline that failed in a row (0 when the last answered).",
        labels=_ACCOUNT,
    )
    for row in rows:
        labels = (row.account, row.instance)
        posts.add_metric(labels, row.posts)
        interactions.add_metric(labels, row.interactions)
        if row.rate is not None:
            rate.add_metric(labels, row.rate)
        if row.read_at is not None:
            read.add_metric(labels, row.read_at.timestamp())
            requests.add_metric(labels, row.last_requests)
        failures.add_metric(labels, row.consecutive_failures)
    yield from (posts, interactions, rate, read, requests, failures)
