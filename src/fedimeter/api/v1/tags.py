"""``/api/v1/tags``: track, list, read and stop tracking hashtags; their days and graphs.

Also ``/api/v1/instances/{id}/trends``: the trending lists recorded for an instance (see
``trends_router``), which belong to the hashtags rather than to tracked instances: trends are
recorded for instances that are not tracked for themselves too; and ``/api/v1/trends``
(``recorded_trends_router``): which instances' trends are recorded, starting and stopping.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse

from fedimeter.api.deps import ReadAccess, ServicesDep, WriteAccess
from fedimeter.api.errors import status_for
from fedimeter.api.schemas import MAX_ID, READ_ERRORS, WRITE_ERRORS, ErrorBody
from fedimeter.api.v1.graphs import GRAPH_RESPONSES, GraphLook, image_response
from fedimeter.api.v1.negotiation import FORMAT_DESCRIPTION, Format, wants_csv
from fedimeter.api.v1.tag_schemas import (
    TagAddError,
    TagAddResult,
    TagCreate,
    TagDayPublic,
    TagHistoryPublic,
    TagOutcomePublic,
    TagPublic,
    TrendListPublic,
    TrendsCreate,
    TrendsPublic,
    TrendsRecorded,
    TrendTagPublic,
)
from fedimeter.domain.report_render import csv_safe
from fedimeter.domain.when import parse_period
from fedimeter.errors import AlreadyTracked, NotTracked
from fedimeter.graphing import TagGraphMetric, tag_graph
from fedimeter.storage.tags import TagDayRecord, TagRecord, TagStore, TrendRecord
from fedimeter.tag_tracking import TagAdd, add_tags, add_trends

__all__ = [
    "TAG_CSV_COLUMNS",
    "recorded_trends_router",
    "router",
    "tag_days_csv",
    "trends_router",
]

log = logging.getLogger("fedimeter.api")

router = APIRouter(prefix="/tags", tags=["tags"], responses=READ_ERRORS)
trends_router = APIRouter(prefix="/instances", tags=["tags"], responses=READ_ERRORS)
recorded_trends_router = APIRouter(prefix="/trends", tags=["tags"], responses=READ_ERRORS)

TagId = Annotated[int, Path(ge=1, le=MAX_ID, description="The tag's id in fedimeter.")]
InstanceId = Annotated[int, Path(ge=1, le=MAX_ID, description="The instance's id in fedimeter.")]

#: The columns of a tag's days as CSV.
TAG_CSV_COLUMNS = ("tag", "instance", "day", "uses", "accounts", "complete")

DaySince = Annotated[
    str | None,
    Query(
        description="From this day: YYYY-MM-DD, an ISO datetime (its UTC day) or an age such"
        " as 30d. Default: the first day recorded."
    ),
]
DayUntil = Annotated[
    str | None,
    Query(description="Up to this day, same forms, that day included. Default: today."),
]
TimeSince = Annotated[
    str | None,
    Query(
        description="From this moment: YYYY-MM-DD, an ISO datetime (UTC unless it has an"
        " offset), or an age such as 30d."
    ),
]
TimeUntil = Annotated[
    str | None,
    Query(description="Up to this moment, same forms; a bare date includes that whole day."),
]


# -- tags ----------------------------------------------------------------------------------


async def _public(store: TagStore, tag_ids: list[int]) -> dict[int, TagPublic]:
    """The tracked tags among ``tag_ids`` with their newest days, by id."""
    wanted = set(tag_ids)
    return {row[0].id: TagPublic.of(*row) for row in await store.latest() if row[0].id in wanted}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    dependencies=[WriteAccess],
    response_model=TagAddResult,
    responses={
        **WRITE_ERRORS,
        409: {"model": TagAddError, "description": "Already tracked on every instance given."},
        422: {
            "model": TagAddError,
            "description": "Not a hashtag, not an instance address, or a refused address.",
        },
        502: {
            "model": TagAddError,
            "description": "No instance could tell: no hashtag API, unreachable, or nonsense.",
        },
    },
)
async def create_tag(body: TagCreate, services: ServicesDep) -> Response:
    """Track a hashtag on instances: each is asked at once and its last 7 days are stored.

    201 when it was added on at least one instance (the others' outcomes say why not);
    otherwise the status of the worst reason, with every outcome.
    """
    store = TagStore(services.db)
    outcomes = await add_tags(
        store,
        services.client,
        [body.name],
        list(dict.fromkeys(body.hosts)),
        default_scheme=services.settings.default_scheme,
        clock=services.clock,
    )
    added = [o.tag.id for o in outcomes if o.status == "added" and o.tag is not None]
    tags = await _public(store, added)
    public = [_outcome(o, tags) for o in outcomes]
    if added:
        result = TagAddResult(name=body.name, added=len(added), outcomes=public)
        return JSONResponse(
            result.model_dump(mode="json"),
            status_code=status.HTTP_201_CREATED,
            headers={"Location": f"/api/v1/tags/{added[0]}"},
        )
    errors = [o.error for o in outcomes if o.error is not None]
    worst = max(errors, key=status_for)
    code = status_for(worst)
    if code >= status.HTTP_500_INTERNAL_SERVER_ERROR:
        log.warning("%s: %s", type(worst).__name__, worst)
    detail = (
        str(worst)
        if len(outcomes) == 1
        else f"#{body.name.lstrip('#')} was added nowhere: "
        + "; ".join(f"{o.host}: {o.error}" for o in outcomes)
    )
    error = TagAddError(detail=detail, code=worst.code, outcomes=public)
    return JSONResponse(error.model_dump(mode="json"), status_code=code)


def _outcome(outcome: TagAdd, tags: dict[int, TagPublic]) -> TagOutcomePublic:
    return TagOutcomePublic(
        host=outcome.tag.host if outcome.tag is not None else outcome.host,
        status=outcome.status,
        tag=None if outcome.tag is None else tags.get(outcome.tag.id),
        days=outcome.days,
        detail=None if outcome.error is None else str(outcome.error),
        code=None if outcome.error is None else outcome.error.code,
    )


@router.get("", dependencies=[ReadAccess])
async def list_tags(services: ServicesDep) -> list[TagPublic]:
    """Every tracked hashtag with its newest complete day and its day so far, by name, host."""
    return [TagPublic.of(*row) for row in await TagStore(services.db).latest()]


@router.get(
    "/{tag_id}",
    dependencies=[ReadAccess],
    responses={404: {"model": ErrorBody, "description": "No such tracked tag."}},
)
async def get_tag(tag_id: TagId, services: ServicesDep) -> TagPublic:
    """One tracked hashtag with its newest complete day and its day so far."""
    found = await _public(TagStore(services.db), [tag_id])
    if tag_id not in found:
        raise NotTracked(f"no tracked tag with id {tag_id}")
    return found[tag_id]


@router.delete(
    "/{tag_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[WriteAccess],
    responses={**WRITE_ERRORS, 404: {"model": ErrorBody, "description": "Not tracked."}},
)
async def delete_tag(tag_id: TagId, services: ServicesDep) -> Response:
    """Stop tracking a hashtag on its instance; its days are deleted with it."""
    await TagStore(services.db).untrack(tag_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{tag_id}/history",
    dependencies=[ReadAccess],
    response_model=TagHistoryPublic,
    responses={
        200: {
            "content": {"text/csv": {}},
            "description": FORMAT_DESCRIPTION,
        },
        404: {"model": ErrorBody, "description": "No such tracked tag."},
        422: {"model": ErrorBody, "description": "A date that cannot be read."},
    },
)
async def get_history(  # noqa: PLR0917 - each query parameter is an argument
    tag_id: TagId,
    services: ServicesDep,
    request: Request,
    since: DaySince = None,
    until: DayUntil = None,
    format: Format = None,  # noqa: A002 - the parameter's public name
) -> Response:
    """The tag's days between since and until, oldest first; the newest may be in progress."""
    store = TagStore(services.db)
    tag = await store.get(tag_id)
    start, end = parse_period(since, until, services.clock())
    first = None if start is None else start.date()
    last = None if end is None else end.date()
    days = await store.history(tag.id, first, last)
    if wants_csv(request, format):
        return Response(
            tag_days_csv(tag, days),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{_filename(tag)}"'},
        )
    body = TagHistoryPublic(
        tag_id=tag.id,
        name=tag.name,
        host=tag.host,
        since=first,
        until=last,
        days=[TagDayPublic.of(day) for day in days],
    )
    return Response(body.model_dump_json(), media_type="application/json")


def _filename(tag: TagRecord) -> str:
    """``caturday-mastodon.social.csv``: header-safe ASCII, whatever the tag's script."""
    key = tag.key if tag.key.isascii() else f"tag-{tag.id}"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{key}-{tag.host}") + ".csv"


def tag_days_csv(tag: TagRecord, days: list[TagDayRecord]) -> str:
    """A header row (``TAG_CSV_COLUMNS``) and one row per day; a day never recorded has none.

    The tag's name comes from its server, so a name a spreadsheet would read as a formula gets
    a leading ``'`` (``csv_safe``).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TAG_CSV_COLUMNS)
    for day in days:
        writer.writerow(
            [
                csv_safe(tag.name),
                csv_safe(tag.host),
                day.day.isoformat(),
                day.uses,
                day.accounts,
                "true" if day.complete else "false",
            ]
        )
    return buffer.getvalue()


@router.get(
    "/{tag_id}/graph.{fmt}",  # noqa: FAST003 - GraphLook reads fmt
    dependencies=[ReadAccess],
    response_class=Response,
    responses={
        **GRAPH_RESPONSES,
        404: {"description": "No such tracked tag."},
        422: {"description": "A bad metric, period, theme or size."},
    },
)
async def get_graph(  # noqa: PLR0917 - each query parameter is an argument
    tag_id: TagId,
    services: ServicesDep,
    look: GraphLook,
    metric: Annotated[
        TagGraphMetric,
        Query(description="uses or accounts: what a comparison (compare=true) draws."),
    ] = "uses",
    compare: Annotated[
        bool,
        Query(
            description="Draw the tag on every instance it is tracked on, one line each;"
            " otherwise its uses (bars) and accounts (a line) on this one."
        ),
    ] = False,
    since: DaySince = None,
    until: DayUntil = None,
) -> Response:
    """The tag's uses and accounts a day, or one of them compared across instances."""
    store = TagStore(services.db)
    tag = await store.get(tag_id)
    tags = await store.find(tag.key) if compare else [tag]
    start, end = parse_period(since, until, services.clock())
    image = await tag_graph(
        store,
        tags,
        metric=metric,
        since=start,
        until=end,
        now=services.clock(),
        options=look,
    )
    return image_response(image, look)


# -- trends --------------------------------------------------------------------------------


@trends_router.get(
    "/{instance_id}/trends",
    dependencies=[ReadAccess],
    responses={
        404: {"model": ErrorBody, "description": "No trends recorded for such an instance."},
        422: {"model": ErrorBody, "description": "A date that cannot be read."},
    },
)
async def get_trends(
    instance_id: InstanceId,
    services: ServicesDep,
    since: TimeSince = None,
    until: TimeUntil = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="The newest lists to give.")] = 100,
) -> TrendsPublic:
    """The instance's recorded trending hashtags, one list per round, newest first."""
    try:
        instance = await services.repo.get_instance(instance_id)
    except NotTracked:
        instance = None
    store = TagStore(services.db)
    recording = instance is not None and instance.trends_tracked_at is not None
    if instance is None or not (recording or await store.latest_trends(instance_id)):
        raise NotTracked(
            f"no trending hashtags are recorded for instance {instance_id}"
            " (see: fedimeter tag trends add HOST)"
        )
    start, end = parse_period(since, until, services.clock())
    records = await store.trends(instance_id, start, end)
    return TrendsPublic(
        instance_id=instance.id,
        host=instance.host,
        recording=recording,
        checked_at=instance.trends_checked_at,
        lists=_lists(records)[:limit],
    )


def _lists(records: list[TrendRecord]) -> list[TrendListPublic]:
    """The records grouped by the round that took them, newest first, each in rank order."""
    by_time: dict[datetime, list[TrendTagPublic]] = {}
    for record in sorted(records, key=lambda r: (r.taken_at, r.rank)):
        by_time.setdefault(record.taken_at, []).append(
            TrendTagPublic(
                rank=record.rank,
                name=record.name,
                day=record.day,
                uses=record.uses,
                accounts=record.accounts,
            )
        )
    return [TrendListPublic(taken_at=t, tags=tags) for t, tags in reversed(by_time.items())]


async def _recorded(store: TagStore) -> list[TrendsRecorded]:
    checked = await store.trends_checked()
    recorded = []
    for instance_id, host, _ in await store.trend_instances():
        newest = _lists(await store.latest_trends(instance_id))
        recorded.append(
            TrendsRecorded(
                instance_id=instance_id,
                host=host,
                latest=newest[0] if newest else None,
                checked_at=checked.get(instance_id),
            )
        )
    return recorded


@recorded_trends_router.get("", dependencies=[ReadAccess])
async def list_recorded_trends(services: ServicesDep) -> list[TrendsRecorded]:
    """The instances whose trending hashtags are recorded each round, with their newest list."""
    return await _recorded(TagStore(services.db))


@recorded_trends_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    dependencies=[WriteAccess],
    responses={
        **WRITE_ERRORS,
        409: {"model": ErrorBody, "description": "Its trends are recorded already."},
        422: {"model": ErrorBody, "description": "Not an instance address, or a refused one."},
        502: {"model": ErrorBody, "description": "No trends API there, or unreachable."},
    },
)
async def record_trends(body: TrendsCreate, services: ServicesDep) -> TrendsRecorded:
    """Record the instance's trending hashtags each round; it is asked once now."""
    store = TagStore(services.db)
    (change,) = await add_trends(
        store,
        services.client,
        [body.host],
        default_scheme=services.settings.default_scheme,
        clock=services.clock,
    )
    if change.error is not None:
        raise change.error
    if change.status == "already":
        raise AlreadyTracked(f"the trending hashtags of {change.host} are recorded already")
    return next(r for r in await _recorded(store) if r.host == change.host)


@recorded_trends_router.delete(
    "/{instance_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[WriteAccess],
    responses={
        **WRITE_ERRORS,
        404: {"model": ErrorBody, "description": "Its trends are not recorded."},
    },
)
async def stop_recording_trends(instance_id: InstanceId, services: ServicesDep) -> Response:
    """Stop recording the instance's trending hashtags (the lists recorded stay)."""
    store = TagStore(services.db)
    host = next((h for i, h, _ in await store.trend_instances() if i == instance_id), None)
    if host is None or not await store.untrack_trends(host):
        raise NotTracked(f"the trending hashtags of instance {instance_id} are not recorded")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
