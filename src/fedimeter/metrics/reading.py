"""Reading a ``MetricsSnapshot`` from storage, once per scrape."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fedimeter.metrics.snapshot import InstanceRow, MetricsSnapshot, newest_closed_run

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from fedimeter.storage.repository import Repository

__all__ = ["RUNS_READ", "instance_rows", "read_snapshot"]

#: Rounds read to find the newest that ended: only one runs at a time, and a new round marks
#: every running one whose owner died as interrupted, so the second is already enough.
RUNS_READ = 5


async def instance_rows(repo: Repository) -> list[InstanceRow]:  # noqa: ARG001
    """The measured servers' latest figures, one row per server.

    A hook: instances are not measured yet, so there is nothing to export. Replace its body
    with a storage read once they are; ``read_snapshot`` calls it on every scrape.
    """
    return []


async def read_snapshot(
    repo: Repository,
    *,
    instances: Callable[[Repository], Awaitable[list[InstanceRow]]] = instance_rows,
) -> MetricsSnapshot:
    """What a scrape exports: every account but untracked ones, the newest rounds, instances.

    Args:
        repo: where to read.
        instances: reads the instance rows (default: ``instance_rows``).

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
    )
