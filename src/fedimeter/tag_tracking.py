"""Tracking hashtags on instances: adding, removing, and reading them in a round.

Each round asks ``/api/v1/tags/:name`` once per tracked tag and instance. The answer covers
the last 7 days, so a daily round fills every day exactly once (the day in progress is stored
incomplete and finished by the next answer) and a round up to 6 days late still misses
nothing; the first answer, when the tag is added, fills the 7 days before. Instances whose
trending tags are recorded are asked ``/api/v1/trends/tags`` once per round.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from fedimeter.clock import Clock, utc_now
from fedimeter.domain.handles import parse_authority
from fedimeter.domain.tags import parse_tag_name
from fedimeter.errors import (
    AlreadyTracked,
    FedimeterError,
    FediverseError,
    Halted,
    NotTracked,
)
from fedimeter.storage.records import address_from_base_url

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from datetime import datetime

    from fedimeter.domain.models import InstanceAddress
    from fedimeter.domain.tags import TagReading, TrendingTag
    from fedimeter.fediverse import FediverseClient
    from fedimeter.storage.tags import TagRecord, TagStore

__all__ = [
    "TagAdd",
    "TagRead",
    "TagRemove",
    "TagRound",
    "TrendsChange",
    "add_tags",
    "add_trends",
    "find_tags",
    "measure_host_tags",
    "measure_tag",
    "measure_tags",
    "remove_tags",
    "remove_trends",
]

#: Tags (and trend lists) asked at once in a round; the client paces each host on top.
MEASURE_CONCURRENCY = 16

log = logging.getLogger("fedimeter.tags")


@dataclass(frozen=True, slots=True)
class TagAdd:
    """What happened to one tag on one instance given to ``add_tags``."""

    name: str
    host: str
    status: Literal["added", "already", "failed"]
    tag: TagRecord | None = None
    #: Days stored from the first answer.
    days: int = 0
    error: FedimeterError | None = None


@dataclass(frozen=True, slots=True)
class TagRemove:
    """What happened to one tag (on one instance) given to ``remove_tags``."""

    name: str
    host: str | None
    tag: TagRecord | None
    days_deleted: int = 0
    error: FedimeterError | None = None


@dataclass(frozen=True, slots=True)
class TrendsChange:
    """What happened to one instance given to ``add_trends`` or ``remove_trends``."""

    host: str
    status: Literal["added", "removed", "already", "not_recorded", "failed"]
    trending: tuple[TrendingTag, ...] = ()
    error: FedimeterError | None = None


@dataclass(frozen=True, slots=True)
class TagRead:
    """One tag read in a round: what it said and the days that changed, or why it failed."""

    reading: TagReading | None = None
    days: int = 0
    error: FediverseError | None = None


@dataclass(slots=True)
class TagRound:
    """What a round did with tags and trends."""

    #: Tags read, and the days their answers added or rewrote.
    measured: int = 0
    days: int = 0
    #: Tags whose reading failed, with the reason.
    failed: list[tuple[TagRecord, FediverseError]] = field(default_factory=list)
    #: Instances whose trending tags were stored, and those whose reading failed.
    trends: int = 0
    trends_failed: list[tuple[str, FediverseError]] = field(default_factory=list)


def _address(text: str, default_scheme: str) -> InstanceAddress:
    return parse_authority(text, default_scheme)


async def add_tags(
    store: TagStore,
    client: FediverseClient,
    names: Sequence[str],
    hosts: Sequence[str],
    *,
    default_scheme: str = "https",
    clock: Clock = utc_now,
) -> list[TagAdd]:
    """Track each tag of ``names`` on each instance of ``hosts``.

    Each is read at once: a tag the instance cannot answer for (no hashtag API, unreachable,
    refused) is not tracked, and one it answers for gets its last 7 days stored now.

    Raises:
        StorageError: the database refused.
    """
    outcomes: list[TagAdd] = []
    for name in names:
        for host in hosts:
            try:
                outcomes.append(await _add_one(store, client, name, host, default_scheme, clock))
            except AlreadyTracked as exc:
                outcomes.append(TagAdd(name, host, "already", error=exc))
            except FedimeterError as exc:
                outcomes.append(TagAdd(name, host, "failed", error=exc))
    return outcomes


async def _add_one(  # noqa: PLR0917 - one call site, all of it needed
    store: TagStore,
    client: FediverseClient,
    name: str,
    host: str,
    default_scheme: str,
    clock: Clock,
) -> TagAdd:
    """Track one tag on one instance, read first.

    Raises:
        InvalidTag, InvalidHandle: not a hashtag, not an instance address.
        AlreadyTracked: tracked there already.
        FediverseError: the instance could not tell (see ``FediverseClient.tag``).
        StorageError: the database refused.
    """
    tag = parse_tag_name(name)
    address = _address(host, default_scheme)
    if await store.find(tag.key, address.authority):
        raise AlreadyTracked(f"{tag} is already tracked on {address.authority}")
    reading = await client.tag(address, tag)
    now = clock()
    record = await store.track(address, tag, now)
    days = await store.store(record.id, reading, now)
    return TagAdd(name, host, "added", await store.get(record.id), days)


async def find_tags(
    store: TagStore, name: str, host: str | None = None, *, default_scheme: str = "https"
) -> list[TagRecord]:
    """The tracked tag ``name`` on ``host``, or on every instance it is tracked on.

    Raises:
        InvalidTag, InvalidHandle: not a hashtag, not an instance address.
        NotTracked: it is not tracked (there).
    """
    tag = parse_tag_name(name)
    authority = _address(host, default_scheme).authority if host is not None else None
    found = await store.find(tag.key, authority)
    if not found:
        where = f" on {authority}" if authority else ""
        raise NotTracked(f"{tag} is not tracked{where} (see: fedimeter tag list)")
    return found


async def remove_tags(
    store: TagStore,
    names: Sequence[str],
    hosts: Sequence[str] = (),
    *,
    default_scheme: str = "https",
) -> list[TagRemove]:
    """Stop tracking each tag of ``names`` on ``hosts`` (every instance when none); history goes.

    Raises:
        StorageError: the database refused.
    """
    outcomes: list[TagRemove] = []
    places: Sequence[str | None] = list(hosts) or [None]
    for name in names:
        for host in places:
            try:
                found = await find_tags(store, name, host, default_scheme=default_scheme)
            except FedimeterError as exc:
                outcomes.append(TagRemove(name, host, None, error=exc))
                continue
            for tag in found:
                try:
                    deleted = await store.untrack(tag.id)
                except NotTracked as exc:  # removed meanwhile by someone else
                    outcomes.append(TagRemove(name, tag.host, tag, error=exc))
                else:
                    outcomes.append(TagRemove(name, tag.host, tag, deleted))
    return outcomes


async def add_trends(
    store: TagStore,
    client: FediverseClient,
    hosts: Sequence[str],
    *,
    default_scheme: str = "https",
    clock: Clock = utc_now,
) -> list[TrendsChange]:
    """Record the trending tags of each instance of ``hosts`` every round, from now on.

    Each is read at once and its first list stored; an instance without the trends API (or
    unreachable) is refused. An instance with trends turned off answers an empty list: it is
    recorded (lists appear once the admin turns them on).

    Raises:
        StorageError: the database refused.
    """
    changes: list[TrendsChange] = []
    for host in hosts:
        try:
            address = _address(host, default_scheme)
            trending = await client.trending_tags(address)
            now = clock()
            instance_id, added = await store.track_trends(address, now)
            if not added:
                changes.append(TrendsChange(address.authority, "already", trending))
                continue
            await store.store_trends(instance_id, now, trending)
            changes.append(TrendsChange(address.authority, "added", trending))
        except FedimeterError as exc:
            changes.append(TrendsChange(host, "failed", error=exc))
    return changes


async def remove_trends(
    store: TagStore, hosts: Sequence[str], *, default_scheme: str = "https"
) -> list[TrendsChange]:
    """Stop recording the trending tags of each instance of ``hosts`` (what was stored stays).

    Raises:
        StorageError: the database refused.
    """
    changes: list[TrendsChange] = []
    for host in hosts:
        try:
            authority = _address(host, default_scheme).authority
        except FedimeterError as exc:
            changes.append(TrendsChange(host, "failed", error=exc))
            continue
        removed = await store.untrack_trends(authority)
        changes.append(TrendsChange(authority, "removed" if removed else "not_recorded"))
    return changes


async def measure_tag(
    store: TagStore,
    client: FediverseClient,
    tag: TagRecord,
    *,
    run_id: int | None,
    clock: Clock = utc_now,
    before_storing: Callable[[], Awaitable[None]] | None = None,
) -> TagRead | None:
    """Read one tracked tag and store its days, or record why it could not be read.

    ``before_storing`` runs between reading and storing (a worker checks it still holds the
    host) and may raise to keep the reading out.

    Returns:
        What was read and stored, or what failed (recorded as one more failure in a row);
        None when the round is stopping (the round that resumes it reads the tag).

    Raises:
        StorageError: the database refused.
    """
    try:
        reading = await client.tag(tag.address, tag.tag)
    except Halted:
        return None
    except FediverseError as exc:
        if before_storing is not None:
            await before_storing()
        await store.record_failure(tag.id, exc.code, str(exc), clock())
        return TagRead(error=exc)
    if before_storing is not None:
        await before_storing()
    days = await store.store(tag.id, reading, clock(), run_id)
    return TagRead(reading=reading, days=days)


async def measure_tags(
    store: TagStore,
    client: FediverseClient,
    *,
    run_id: int | None,
    measured_since: datetime | None = None,
    clock: Clock = utc_now,
) -> TagRound:
    """Read every tracked tag and every recorded trend list; store what they said.

    Tags read at or after ``measured_since`` (a resumed round) are skipped. A failure is
    recorded on the tag (its ``consecutive_failures`` grows) and never stops the others.

    Raises:
        StorageError: the database refused.
    """
    done = TagRound()
    slots = asyncio.Semaphore(MEASURE_CONCURRENCY)

    async def one_tag(tag: TagRecord) -> None:
        if _reached(tag, measured_since):
            return
        async with slots:
            read = await measure_tag(store, client, tag, run_id=run_id, clock=clock)
        if read is None:
            return
        if read.error is not None:
            done.failed.append((tag, read.error))
        else:
            done.measured += 1
            done.days += read.days

    async def one_trend(instance_id: int, host: str, base_url: str) -> None:
        if measured_since is not None and await store.trends(instance_id, since=measured_since):
            return
        async with slots:
            await _read_trends(
                store, client, (instance_id, host, base_url), run_id=run_id, clock=clock, done=done
            )

    async with asyncio.TaskGroup() as group:
        for tag in await store.tracked():
            group.create_task(one_tag(tag))
        for instance_id, host, base_url in await store.trend_instances():
            group.create_task(one_trend(instance_id, host, base_url))
    done.failed.sort(key=lambda pair: (pair[0].key, pair[0].host))
    return done


def _reached(tag: TagRecord, since: datetime | None) -> bool:
    """Whether the round being resumed (from ``since``) read the tag, or failed to."""
    return since is not None and tag.reached_since(since)


async def _read_trends(
    store: TagStore,
    client: FediverseClient,
    instance: tuple[int, str, str],
    *,
    run_id: int | None,
    clock: Clock,
    done: TagRound,
    before_storing: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Read and store one instance's trending tags; a failure is logged and counted."""
    instance_id, host, base_url = instance
    try:
        trending = await client.trending_tags(address_from_base_url(base_url))
    except Halted:
        return
    except FediverseError as exc:
        # Counted in the round's result (the CLI prints it); the server logs it too.
        log.info("trending tags of %s not read: %s", host, exc)
        done.trends_failed.append((host, exc))
        return
    if before_storing is not None:
        await before_storing()
    await store.store_trends(instance_id, clock(), trending, run_id)
    done.trends += 1


async def measure_host_tags(
    store: TagStore,
    client: FediverseClient,
    tags: Sequence[TagRecord],
    trends: tuple[int, str, str] | None,
    *,
    run_id: int | None,
    clock: Clock = utc_now,
    before_storing: Callable[[], Awaitable[None]] | None = None,
) -> TagRound:
    """Read the tags of one host, and its trending tags when ``trends`` names it (a worker).

    ``before_storing`` runs before each store (a worker checks it still holds the host).

    Raises:
        StorageError: the database refused.
        LeaseLost: raised by ``before_storing``.
    """
    done = TagRound()
    for tag in tags:
        read = await measure_tag(
            store, client, tag, run_id=run_id, clock=clock, before_storing=before_storing
        )
        if read is None:
            continue
        if read.error is not None:
            done.failed.append((tag, read.error))
        else:
            done.measured += 1
            done.days += read.days
    if trends is not None:
        await _read_trends(
            store,
            client,
            trends,
            run_id=run_id,
            clock=clock,
            done=done,
            before_storing=before_storing,
        )
    return done
