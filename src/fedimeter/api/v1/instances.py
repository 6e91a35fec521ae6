"""``/api/v1/instances``: track, list, read and stop tracking instances; samples, weeks, graphs."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from fedimeter.api.deps import ReadAccess, ServicesDep, WriteAccess
from fedimeter.api.schemas import MAX_ID, READ_ERRORS, WRITE_ERRORS, ErrorBody
from fedimeter.api.v1.graphs import (
    GRAPH_RESPONSES,
    GraphLook,
    GraphSince,
    GraphUntil,
    image_response,
)
from fedimeter.domain.when import parse_period
from fedimeter.errors import NotTracked
from fedimeter.graphing import InstanceGraphMetric, instance_graph
from fedimeter.instance_tracking import add_instances
from fedimeter.storage.instances import InstanceSampleRecord, InstanceStore, WeekRecord
from fedimeter.storage.records import InstanceRecord

router = APIRouter(prefix="/instances", tags=["instances"], responses=READ_ERRORS)

InstanceId = Annotated[int, Path(ge=1, le=MAX_ID, description="The instance's id in fedimeter.")]


class InstanceCreate(BaseModel):
    """An instance to track."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(
        min_length=1,
        max_length=300,
        description="host, host:port or https://host",
        examples=["mastodon.social"],
    )


class SourcePublic(BaseModel):
    """How one source of an instance answered."""

    source: str
    status: Literal["ok", "missing", "denied", "failed", "implausible"]
    detail: str


class InstanceSamplePublic(BaseModel):
    """One measurement; null where no source gave the figure or it could not be believed."""

    taken_at: datetime
    up: bool
    software: str | None
    version: str | None
    users: int | None
    statuses: int | None
    domains: int | None
    peers: int | None
    active_month: int | None
    active_halfyear: int | None
    sources: list[SourcePublic]

    @classmethod
    def of(cls, sample: InstanceSampleRecord) -> InstanceSamplePublic:
        """From the stored sample."""
        f = sample.figures
        return cls(
            taken_at=sample.taken_at,
            up=sample.up,
            software=sample.software,
            version=sample.version,
            users=f.users,
            statuses=f.statuses,
            domains=f.domains,
            peers=f.peers,
            active_month=f.active_month,
            active_halfyear=f.active_halfyear,
            sources=[
                SourcePublic(source=s.source, status=s.status, detail=s.detail)
                for s in sample.sources
            ],
        )


class WeekPublic(BaseModel):
    """One week of activity; ``complete`` is false for the week in progress."""

    week_start: date
    statuses: int
    logins: int
    registrations: int
    complete: bool

    @classmethod
    def of(cls, week: WeekRecord) -> WeekPublic:
        """From the stored week."""
        return cls(
            week_start=week.week_start,
            statuses=week.statuses,
            logins=week.logins,
            registrations=week.registrations,
            complete=week.complete,
        )


class InstancePublic(BaseModel):
    """A tracked instance with its newest sample and newest complete week."""

    id: int
    host: str
    base_url: str
    tracked_at: datetime | None
    latest: InstanceSamplePublic | None
    last_complete_week: WeekPublic | None

    @classmethod
    def of(
        cls,
        instance: InstanceRecord,
        sample: InstanceSampleRecord | None,
        week: WeekRecord | None,
    ) -> InstancePublic:
        """From the stored records."""
        return cls(
            id=instance.id,
            host=instance.host,
            base_url=instance.base_url,
            tracked_at=instance.tracked_at,
            latest=None if sample is None else InstanceSamplePublic.of(sample),
            last_complete_week=None if week is None else WeekPublic.of(week),
        )


async def _tracked(store: InstanceStore, instance_id: int) -> InstanceRecord:
    for instance in await store.tracked():
        if instance.id == instance_id:
            return instance
    raise NotTracked(f"no tracked instance with id {instance_id}")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    dependencies=[WriteAccess],
    responses={
        **WRITE_ERRORS,
        409: {"model": ErrorBody, "description": "Already tracked."},
        422: {"model": ErrorBody, "description": "Not an instance address, or refused."},
        502: {"model": ErrorBody, "description": "It answered none of its sources."},
    },
)
async def create_instance(body: InstanceCreate, services: ServicesDep) -> InstancePublic:
    """Track an instance: it is measured at once from every source it offers."""
    store = InstanceStore(services.db)
    [outcome] = await add_instances(
        store,
        services.client,
        [body.host],
        default_scheme=services.settings.default_scheme,
        clock=services.clock,
    )
    if outcome.error is not None:
        raise outcome.error
    assert outcome.instance is not None  # noqa: S101 - an outcome without error has it
    return await get_instance(outcome.instance.id, services)


@router.get("", dependencies=[ReadAccess])
async def list_instances(services: ServicesDep) -> list[InstancePublic]:
    """Every tracked instance with its latest figures, by host."""
    return [InstancePublic.of(*row) for row in await InstanceStore(services.db).latest()]


@router.get(
    "/{instance_id}",
    dependencies=[ReadAccess],
    responses={404: {"model": ErrorBody, "description": "No such tracked instance."}},
)
async def get_instance(instance_id: InstanceId, services: ServicesDep) -> InstancePublic:
    """One tracked instance with its latest figures."""
    for row in await InstanceStore(services.db).latest():
        if row[0].id == instance_id:
            return InstancePublic.of(*row)
    raise NotTracked(f"no tracked instance with id {instance_id}")


@router.delete(
    "/{instance_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[WriteAccess],
    responses={**WRITE_ERRORS, 404: {"model": ErrorBody, "description": "Not tracked."}},
)
async def delete_instance(
    instance_id: InstanceId,
    services: ServicesDep,
    purge: Annotated[bool, Query(description="Also delete its samples and weeks.")] = False,
) -> Response:
    """Stop tracking an instance; its history is kept unless purge=true."""
    await InstanceStore(services.db).untrack(instance_id, purge=purge)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{instance_id}/samples",
    dependencies=[ReadAccess],
    responses={
        404: {"model": ErrorBody, "description": "No such tracked instance."},
        422: {"model": ErrorBody, "description": "A date that cannot be read."},
    },
)
async def get_samples(
    instance_id: InstanceId,
    services: ServicesDep,
    since: GraphSince = None,
    until: GraphUntil = None,
) -> list[InstanceSamplePublic]:
    """The instance's measurements, oldest first."""
    store = InstanceStore(services.db)
    await _tracked(store, instance_id)
    start, end = parse_period(since, until, services.clock())
    return [InstanceSamplePublic.of(s) for s in await store.samples(instance_id, start, end)]


@router.get(
    "/{instance_id}/activity",
    dependencies=[ReadAccess],
    responses={
        404: {"model": ErrorBody, "description": "No such tracked instance."},
        422: {"model": ErrorBody, "description": "A date that cannot be read."},
    },
)
async def get_activity(
    instance_id: InstanceId,
    services: ServicesDep,
    since: GraphSince = None,
    until: GraphUntil = None,
) -> list[WeekPublic]:
    """The instance's weekly activity, oldest week first; the week in progress is incomplete."""
    store = InstanceStore(services.db)
    await _tracked(store, instance_id)
    start, end = parse_period(since, until, services.clock())
    weeks = await store.weeks(
        instance_id, None if start is None else start.date(), None if end is None else end.date()
    )
    return [WeekPublic.of(w) for w in weeks]


@router.get(
    "/{instance_id}/graph.{fmt}",  # noqa: FAST003 - GraphLook reads fmt
    dependencies=[ReadAccess],
    response_class=Response,
    responses={
        **GRAPH_RESPONSES,
        404: {"description": "No such tracked instance."},
        422: {"description": "A bad metric, period, theme or size."},
    },
)
async def get_graph(  # noqa: PLR0917 - each query parameter is an argument
    instance_id: InstanceId,
    services: ServicesDep,
    look: GraphLook,
    metric: Annotated[
        InstanceGraphMetric, Query(description="users, statuses, or activity (weekly).")
    ] = "users",
    since: GraphSince = None,
    until: GraphUntil = None,
) -> Response:
    """The instance's users, posts or weekly activity over time."""
    store = InstanceStore(services.db)
    instance = await _tracked(store, instance_id)
    start, end = parse_period(since, until, services.clock())
    image = await instance_graph(
        store,
        instance,
        metric=metric,
        since=start,
        until=end,
        now=services.clock(),
        options=look,
    )
    return image_response(image, look)
