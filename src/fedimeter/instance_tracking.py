"""Tracking instances for themselves: adding, removing, and measuring them in a round."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from fedimeter.clock import Clock, utc_now
from fedimeter.domain.handles import parse_authority
from fedimeter.errors import (
    AddressRefused,
    AlreadyTracked,
    FedimeterError,
    Halted,
    NotTracked,
    RemoteUnavailable,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from datetime import datetime

    from fedimeter.domain.instances import InstanceMeasurement, SourceResult
    from fedimeter.fediverse import FediverseClient
    from fedimeter.storage.instances import InstanceStore
    from fedimeter.storage.records import InstanceRecord

__all__ = [
    "InstanceAdd",
    "InstanceRemove",
    "add_instances",
    "describe_down",
    "find_tracked_instance",
    "measure_instances",
    "measure_tracked_instance",
    "remove_instances",
    "source_problems",
]

#: Instances measured at once in a round; the client paces each host on top.
MEASURE_CONCURRENCY = 16


@dataclass(frozen=True, slots=True)
class InstanceAdd:
    """What happened to one address given to ``add_instances``."""

    text: str
    status: Literal["added", "already", "failed"]
    instance: InstanceRecord | None = None
    measurement: InstanceMeasurement | None = None
    error: FedimeterError | None = None


@dataclass(frozen=True, slots=True)
class InstanceRemove:
    """What happened to one address given to ``remove_instances``."""

    text: str
    instance: InstanceRecord | None
    samples_deleted: int = 0
    error: FedimeterError | None = None


def describe_down(host: str, measurement: InstanceMeasurement) -> str:
    """One sentence saying why no source of ``host`` answered (each reason said once)."""
    by_reason: dict[str, list[str]] = {}
    for s in measurement.sources:
        if s.status != "ok":
            by_reason.setdefault(s.detail or s.status, []).append(s.source)
    reasons = "; ".join(f"{', '.join(names)}: {why}" for why, names in by_reason.items())
    return f"{host} answered none of its sources ({reasons})"


def source_problems(sources: Sequence[SourceResult]) -> list[SourceResult]:
    """The sources worth a person's attention: failed, refused, implausible, or turned off.

    A source the software does not offer at all (Misskey has no Mastodon API) is no problem.
    """
    return [s for s in sources if s.status != "ok" and not s.detail.startswith("not offered by")]


async def add_instances(
    store: InstanceStore,
    client: FediverseClient,
    texts: Sequence[str],
    *,
    default_scheme: str = "https",
    clock: Clock = utc_now,
) -> list[InstanceAdd]:
    """Track each instance named in ``texts`` (``host``, ``host:port`` or a URL).

    Each is measured at once: an instance that answers none of its sources is not tracked,
    and one that answers gets its first sample now.

    Raises:
        StorageError: the database refused.
    """
    outcomes: list[InstanceAdd] = []
    for text in texts:
        try:
            outcomes.append(await _add_one(store, client, text, default_scheme, clock))
        except AlreadyTracked as exc:
            outcomes.append(InstanceAdd(text, "already", error=exc))
        except FedimeterError as exc:
            outcomes.append(InstanceAdd(text, "failed", error=exc))
    return outcomes


async def _add_one(
    store: InstanceStore, client: FediverseClient, text: str, default_scheme: str, clock: Clock
) -> InstanceAdd:
    """Track one instance, measured first.

    Raises:
        InvalidHandle: not an instance address.
        AlreadyTracked: it is tracked already.
        AddressRefused: the SSRF guard refused it.
        RemoteUnavailable: it answered none of its sources.
        StorageError: the database refused.
    """
    address = parse_authority(text, default_scheme)
    known = await store.find(address.authority)
    if known is not None and known.tracked_at is not None:
        raise AlreadyTracked(f"{address.authority} is already tracked")
    measurement = await client.measure_instance(address)
    if not measurement.up:
        raise RemoteUnavailable(describe_down(address.authority, measurement))
    record = await store.track(address, clock())
    await store.store(record.id, measurement)
    return InstanceAdd(text, "added", record, measurement)


async def find_tracked_instance(
    store: InstanceStore, text: str, *, default_scheme: str = "https"
) -> InstanceRecord:
    """The tracked instance named by ``text``.

    Raises:
        InvalidHandle: ``text`` is not an instance address.
        NotTracked: it is not tracked.
    """
    address = parse_authority(text, default_scheme)
    found = await store.find(address.authority)
    if found is None or found.tracked_at is None:
        raise NotTracked(f"{address.authority} is not tracked (see: fedimeter instance list)")
    return found


async def remove_instances(
    store: InstanceStore,
    texts: Sequence[str],
    *,
    purge: bool = False,
    default_scheme: str = "https",
) -> list[InstanceRemove]:
    """Stop tracking each instance named; ``purge`` deletes its history too.

    Raises:
        StorageError: the database refused.
    """
    outcomes: list[InstanceRemove] = []
    for text in texts:
        try:
            found = await find_tracked_instance(store, text, default_scheme=default_scheme)
            deleted = await store.untrack(found.id, purge=purge)
        except FedimeterError as exc:
            outcomes.append(InstanceRemove(text, None, error=exc))
        else:
            outcomes.append(InstanceRemove(text, found, deleted))
    return outcomes


async def measure_instances(
    store: InstanceStore,
    client: FediverseClient,
    *,
    run_id: int | None,
    measured_since: datetime | None = None,
) -> list[tuple[InstanceRecord, InstanceMeasurement]]:
    """Measure every tracked instance and store what it said, failures included.

    Instances with a sample at or after ``measured_since`` (a resumed round) are skipped.
    An instance whose address is refused (SSRF guard) is skipped, and so is one not reached
    before the round was told to stop.

    Raises:
        StorageError: the database refused.
    """
    tracked = await store.tracked()
    slots = asyncio.Semaphore(MEASURE_CONCURRENCY)
    results: list[tuple[InstanceRecord, InstanceMeasurement]] = []

    async def one(instance: InstanceRecord) -> None:
        async with slots:
            if measured_since is not None and await store.samples(instance.id, measured_since):
                return
            measurement = await measure_tracked_instance(store, client, instance, run_id=run_id)
            if measurement is not None:
                results.append((instance, measurement))

    async with asyncio.TaskGroup() as group:
        for instance in tracked:
            group.create_task(one(instance))
    results.sort(key=lambda pair: pair[0].host)
    return results


async def measure_tracked_instance(
    store: InstanceStore,
    client: FediverseClient,
    instance: InstanceRecord,
    *,
    run_id: int | None,
    before_storing: Callable[[], Awaitable[None]] | None = None,
) -> InstanceMeasurement | None:
    """Measure one tracked instance and store what it said (failures included).

    ``before_storing`` runs between measuring and storing (a worker checks it still holds
    the host) and may raise to keep the measurement out.

    Returns:
        The measurement, or None when the address is refused (SSRF guard) or the round is
        stopping (the round that resumes it measures the instance).

    Raises:
        StorageError: the database refused.
    """
    previous = await store.previous_figures(instance.id)
    try:
        measurement = await client.measure_instance(instance.address, previous=previous)
    except (AddressRefused, Halted):
        return None
    if before_storing is not None:
        await before_storing()
    await store.store(instance.id, measurement, run_id)
    return measurement
