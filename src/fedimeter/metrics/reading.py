"""Reading a ``MetricsSnapshot`` from storage, once per scrape."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fedimeter.metrics.engagement import EngagementRow, engagement_rows
from fedimeter.metrics.snapshot import InstanceRow, MetricsSnapshot, TagRow, newest_closed_run
from fedimeter.storage.instances import InstanceStore
from fedimeter.storage.tags import TagStore

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from fedimeter.storage.repository import Repository

__all__ = ["RUNS_READ", "instance_rows", "read_snapshot", "tag_rows"]

#: Rounds read to find the newest that ended: only one runs at a time, and a new round marks
#: every running one whose owner died as interrupted, so the second is already enough.
RUNS_READ = 5


async def instance_rows(repo: Repository) -> list[InstanceRow]:
    """The tracked instances' latest figures, one row per instance.

    An instance not measured yet has no row: nothing is known of it, not even whether it is
    up.
    """
    rows: list[InstanceRow] = []
    for instance, sample, week in await InstanceStore(repo.db).latest():
        if sample is None:
            continue
        figures = sample.figures
        rows.append(
            InstanceRow(
                host=instance.host,
                software=sample.software,
                version=sample.version,
                up=sample.up,
                users=figures.users,
                statuses=figures.statuses,
                domains=figures.domains,
                peers=figures.peers,
                active_month=figures.active_month,
                active_halfyear=figures.active_halfyear,
                week_statuses=None if week is None else week.statuses,
                week_logins=None if week is None else week.logins,
                week_registrations=None if week is None else week.registrations,
                measured_at=sample.taken_at,
            )
        )
    return rows


async def tag_rows(repo: Repository) -> list[TagRow]:
    """The tracked hashtags, one row per tag and instance, with their newest days."""
    return [
        TagRow(
            tag=tag.key,
            instance=tag.host,
            day=None if done is None else done.day,
            uses=None if done is None else done.uses,
            accounts=None if done is None else done.accounts,
            uses_so_far=None if going is None else going.uses,
            consecutive_failures=tag.consecutive_failures,
            read_at=tag.checked_at,
        )
        for tag, done, going in await TagStore(repo.db).latest()
    ]


async def read_snapshot(
    repo: Repository,
    *,
    instances: Callable[[Repository], Awaitable[list[InstanceRow]]] = instance_rows,
    tags: Callable[[Repository], Awaitable[list[TagRow]]] = tag_rows,
    engagement: Callable[[Repository], Awaitable[list[EngagementRow]]] = engagement_rows,
) -> MetricsSnapshot:
    """What a scrape exports: every account but untracked ones, the newest rounds, instances, tags.

    Args:
        repo: where to read.
        instances: reads the instance rows (default: ``instance_rows``).
        tags: reads the hashtag rows (default: ``tag_rows``).
        engagement: reads the rows of accounts with engagement on (``engagement_rows``).

    Raises:
        StorageError: the database is unavailable.
    """
    accounts = await repo.list_accounts(states=None)
    runs = await repo.list_runs(RUNS_READ)
    return MetricsSnapshot(
        accounts=accounts,
        last_run=runs[0] if runs else None,
        last_finished_run=newest_closed_run(runs),
        instances=await instances(repo),
        tags=await tags(repo),
        engagement=await engagement(repo),
    )
