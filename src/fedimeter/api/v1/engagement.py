"""``/api/v1/accounts/{id}/engagement``: turn it on and off, its figures, statuses and graph.

A sub-resource of the account: ``PUT`` turns engagement on (idempotent), ``DELETE`` turns it
off (``purge=true`` also deletes the statuses read), ``GET`` gives the figures of a period
with its best posts and its days (or weeks), ``/statuses`` the stored statuses themselves
(JSON or CSV), ``/graph.{png,svg}`` a picture. What the figures mean: docs/engagement.md.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status
from pydantic import BaseModel

from fedimeter.api.deps import ReadAccess, ServicesDep, WriteAccess
from fedimeter.api.schemas import MAX_ID, READ_ERRORS, WRITE_ERRORS, ErrorBody
from fedimeter.api.services import Services
from fedimeter.api.v1.graphs import GRAPH_RESPONSES, GraphLook, image_response
from fedimeter.api.v1.negotiation import FORMAT_DESCRIPTION, Format, wants_csv
from fedimeter.domain.engagement import BestPost, EngagementFigures
from fedimeter.domain.report_render import csv_safe
from fedimeter.domain.when import parse_period
from fedimeter.engagement_tracking import EngagementView, enable_engagement, engagement_view
from fedimeter.errors import NotTracked
from fedimeter.graphing import engagement_graph
from fedimeter.graphs.engagement import EngagementMetric
from fedimeter.reporting import report_period
from fedimeter.storage.engagement import EngagementAccount, EngagementStore, StatusRecord

__all__ = ["STATUS_CSV_COLUMNS", "router", "statuses_csv"]

router = APIRouter(prefix="/accounts", tags=["engagement"], responses=READ_ERRORS)

AccountId = Annotated[int, Path(ge=1, le=MAX_ID, description="The account's id in fedimeter.")]
Period = Annotated[
    str | None,
    Query(description="A period ending now (or at until): 1d, 7d, 30d, 12w. Default 7d."),
]
Since = Annotated[
    str | None,
    Query(
        description="From this moment: YYYY-MM-DD, an ISO datetime (UTC unless it has an"
        " offset), or an age such as 30d; instead of period."
    ),
]
Until = Annotated[
    str | None,
    Query(description="Up to this moment, same forms; a bare date includes that whole day."),
]
By = Annotated[
    Literal["day", "week"], Query(description="Buckets of the period: UTC days or ISO weeks.")
]
_NOT_ON: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such account, or engagement never on."}
}

#: The columns of an account's stored statuses as CSV.
STATUS_CSV_COLUMNS = (
    "id",
    "created_at",
    "kind",
    "favourites",
    "reblogs",
    "replies",
    "in_reply_to_id",
    "visibility",
    "url",
    "excerpt",
    "first_seen_at",
    "last_seen_at",
    "gone_at",
)


class EngagementStatePublic(BaseModel):
    """Whether an account's timeline is read each round, and how its last reading went."""

    account_id: int
    handle: str
    enabled: bool
    enabled_at: datetime | None
    read_at: datetime | None
    #: Every status posted from then on was read.
    covered_since: datetime | None
    last_requests: int
    last_paging_requests: int
    last_statuses: int
    consecutive_failures: int
    last_error: str | None
    last_error_code: str | None
    last_error_at: datetime | None

    @classmethod
    def of(cls, state: EngagementAccount) -> EngagementStatePublic:
        """The public form of a stored state."""
        return cls(
            account_id=state.account.id,
            handle=state.account.handle.acct,
            enabled=state.enabled,
            enabled_at=state.enabled_at,
            read_at=state.read_at,
            covered_since=state.covered_since,
            last_requests=state.last_requests,
            last_paging_requests=state.last_paging_requests,
            last_statuses=state.last_statuses,
            consecutive_failures=state.consecutive_failures,
            last_error=state.last_error,
            last_error_code=state.last_error_code,
            last_error_at=state.last_error_at,
        )


class BestPostPublic(BaseModel):
    """One of a period's best own statuses and what it received."""

    id: str
    created_at: datetime
    kind: str
    url: str | None
    excerpt: str
    favourites: int
    boosts: int
    replies: int
    interactions: int

    @classmethod
    def of(cls, post: BestPost) -> BestPostPublic:
        """The public form of a best post."""
        return cls(
            id=post.id,
            created_at=post.created_at,
            kind=post.kind,
            url=post.url,
            excerpt=post.excerpt,
            favourites=post.favourites,
            boosts=post.boosts,
            replies=post.replies,
            interactions=post.interactions,
        )


class FiguresPublic(BaseModel):
    """One period's engagement (docs/engagement.md has every definition)."""

    since: datetime
    until: datetime
    posts: int
    replies: int
    boosts: int
    favourites_received: int
    boosts_received: int
    replies_received: int
    interactions: int
    favourites_per_post: float | None
    boosts_per_post: float | None
    replies_per_post: float | None
    interactions_per_post: float | None
    followers: int | None
    #: Interactions per own status over followers, in percent.
    engagement_rate: float | None
    #: Some of its statuses are still read each round: the figures may still grow.
    provisional: bool

    @classmethod
    def of(cls, figures: EngagementFigures) -> FiguresPublic:
        """The public form of a period's figures."""
        return cls(
            since=figures.since,
            until=figures.until,
            posts=figures.posts,
            replies=figures.replies,
            boosts=figures.boosts,
            favourites_received=figures.favourites_received,
            boosts_received=figures.boosts_received,
            replies_received=figures.replies_received,
            interactions=figures.interactions,
            favourites_per_post=figures.favourites_per_post,
            boosts_per_post=figures.boosts_per_post,
            replies_per_post=figures.replies_per_post,
            interactions_per_post=figures.interactions_per_post,
            followers=figures.followers,
            engagement_rate=figures.rate,
            provisional=figures.provisional,
        )


class EngagementPublic(BaseModel):
    """An account's engagement over a period: the whole, its best posts, and each bucket."""

    state: EngagementStatePublic
    period: FiguresPublic
    #: Statuses of the period's start were not (all) read: before ``covered_since``.
    partial: bool
    best: list[BestPostPublic]
    by: Literal["day", "week"]
    buckets: list[FiguresPublic]

    @classmethod
    def of(cls, view: EngagementView) -> EngagementPublic:
        """The public form of a view."""
        return cls(
            state=EngagementStatePublic.of(view.state),
            period=FiguresPublic.of(view.figures),
            partial=view.partial,
            best=[BestPostPublic.of(post) for post in view.figures.best],
            by=view.by,
            buckets=[FiguresPublic.of(bucket) for bucket in view.buckets],
        )


class StatusPublic(BaseModel):
    """A stored status of the account's timeline, with the counts it showed when last read."""

    id: str
    created_at: datetime
    kind: str
    favourites: int
    reblogs: int
    replies: int
    in_reply_to_id: str | None
    visibility: str
    url: str | None
    excerpt: str
    first_seen_at: datetime
    last_seen_at: datetime
    #: A reading that covered its moment no longer found it (deleted, or no longer public).
    gone_at: datetime | None

    @classmethod
    def of(cls, status: StatusRecord) -> StatusPublic:
        """The public form of a stored status."""
        return cls(
            id=status.id,
            created_at=status.created_at,
            kind=status.kind,
            favourites=status.favourites,
            reblogs=status.reblogs,
            replies=status.replies,
            in_reply_to_id=status.in_reply_to_id,
            visibility=status.visibility,
            url=status.url,
            excerpt=status.excerpt,
            first_seen_at=status.first_seen_at,
            last_seen_at=status.last_seen_at,
            gone_at=status.gone_at,
        )


class StatusesPublic(BaseModel):
    """An account's stored statuses between since and until, oldest first."""

    account_id: int
    handle: str
    since: datetime | None
    until: datetime | None
    statuses: list[StatusPublic]


async def _state(services: Services, account_id: int) -> EngagementAccount:
    """The account's engagement, for every route but PUT.

    Raises:
        NotTracked: no such account ("no account with id 99", as on every account route),
            or engagement was never on for it (saying how to turn it on).
    """
    await services.repo.get_account(account_id)
    state = await EngagementStore(services.db).get(account_id)
    if state is None:
        raise NotTracked(
            f"engagement was never on for account {account_id}"
            f" (turn it on with PUT /api/v1/accounts/{account_id}/engagement)"
        )
    return state


@router.put(
    "/{account_id}/engagement",
    dependencies=[WriteAccess],
    responses={
        **WRITE_ERRORS,
        404: {"model": ErrorBody, "description": "No such account, or no longer tracked."},
    },
)
async def put_engagement(account_id: AccountId, services: ServicesDep) -> EngagementStatePublic:
    """Turn engagement on: the account's timeline is read each round from the next one on.

    Idempotent: turning it on again changes nothing. It costs requests to the account's
    home server each round (docs/engagement.md says how many).
    """
    account = await services.repo.get_account(account_id)
    store = EngagementStore(services.db)
    await enable_engagement(store, account, services.clock())
    return EngagementStatePublic.of(await _state(services, account_id))


@router.delete(
    "/{account_id}/engagement",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[WriteAccess],
    responses={**WRITE_ERRORS, **_NOT_ON},
)
async def delete_engagement(
    account_id: AccountId,
    services: ServicesDep,
    purge: Annotated[
        bool, Query(description="Also delete the statuses read (cannot be undone).")
    ] = False,
) -> Response:
    """Turn engagement off; the statuses read stay (and their figures) unless purge=true."""
    await _state(services, account_id)
    await EngagementStore(services.db).disable(account_id, purge=purge)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{account_id}/engagement",
    dependencies=[ReadAccess],
    responses={
        **_NOT_ON,
        422: {"model": ErrorBody, "description": "A period or date that cannot be read."},
    },
)
async def get_engagement(  # noqa: PLR0917 - each query parameter is an argument
    account_id: AccountId,
    services: ServicesDep,
    period: Period = None,
    since: Since = None,
    until: Until = None,
    by: By = "day",
    top: Annotated[int, Query(ge=0, le=100, description="How many best posts.")] = 5,
) -> EngagementPublic:
    """The account's engagement over a period, its best posts, and each day (or week).

    Posts, replies and boosts made; favourites, boosts and replies received per post; the
    engagement rate (interactions per post over followers, in percent).
    """
    await _state(services, account_id)
    start, end = report_period(services.clock(), period, since, until)
    view = await engagement_view(
        EngagementStore(services.db), account_id, since=start, until=end, by=by, top=top
    )
    return EngagementPublic.of(view)


@router.get(
    "/{account_id}/engagement/statuses",
    dependencies=[ReadAccess],
    response_model=StatusesPublic,
    responses={
        200: {"content": {"text/csv": {}}, "description": FORMAT_DESCRIPTION},
        **_NOT_ON,
        422: {"model": ErrorBody, "description": "A date that cannot be read."},
    },
)
async def get_statuses(  # noqa: PLR0917 - each query parameter is an argument
    account_id: AccountId,
    services: ServicesDep,
    request: Request,
    since: Since = None,
    until: Until = None,
    include_gone: Annotated[
        bool, Query(description="Also the statuses the server no longer shows.")
    ] = False,
    format: Format = None,  # noqa: A002 - the parameter's public name
) -> Response:
    """The account's stored statuses posted between since and until, oldest first."""
    state = await _state(services, account_id)
    start, end = parse_period(since, until, services.clock())
    statuses = await EngagementStore(services.db).statuses(
        account_id, start, end, include_gone=include_gone
    )
    handle = state.account.handle.acct
    if wants_csv(request, format):
        filename = f"{handle.replace(':', '_')}-statuses.csv"
        return Response(
            statuses_csv(statuses),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    body = StatusesPublic(
        account_id=account_id,
        handle=handle,
        since=start,
        until=end,
        statuses=[StatusPublic.of(s) for s in statuses],
    )
    return Response(body.model_dump_json(), media_type="application/json")


def statuses_csv(statuses: list[StatusRecord]) -> str:
    """A header row (``STATUS_CSV_COLUMNS``) and one row per status.

    The excerpt and URL come from the server: a cell a spreadsheet would read as a formula
    gets a leading ``'`` (``csv_safe``).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(STATUS_CSV_COLUMNS)
    for s in statuses:
        writer.writerow(
            [
                csv_safe(s.id),
                _iso(s.created_at),
                s.kind,
                s.favourites,
                s.reblogs,
                s.replies,
                csv_safe(s.in_reply_to_id or ""),
                csv_safe(s.visibility),
                csv_safe(s.url or ""),
                csv_safe(s.excerpt),
                _iso(s.first_seen_at),
                _iso(s.last_seen_at),
                "" if s.gone_at is None else _iso(s.gone_at),
            ]
        )
    return buffer.getvalue()


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@router.get(
    "/{account_id}/engagement/graph.{fmt}",  # noqa: FAST003 - GraphLook reads fmt
    dependencies=[ReadAccess],
    response_class=Response,
    responses={
        **GRAPH_RESPONSES,
        **_NOT_ON,
        422: {"description": "A bad metric, period, theme or size."},
    },
)
async def get_graph(  # noqa: PLR0917 - each query parameter is an argument
    account_id: AccountId,
    services: ServicesDep,
    look: GraphLook,
    metric: Annotated[
        EngagementMetric,
        Query(description="interactions (per post), rate (engagement rate) or activity."),
    ] = "interactions",
    by: By = "day",
    period: Period = None,
    since: Since = None,
    until: Until = None,
) -> Response:
    """The account's engagement over a period, a bar (or dot) per day or week."""
    await _state(services, account_id)
    start, end = report_period(services.clock(), period, since, until)
    image = await engagement_graph(
        EngagementStore(services.db),
        account_id,
        metric=metric,
        by=by,
        since=start,
        until=end,
        options=look,
    )
    return image_response(image, look)
