"""``/api/v1/graph.{png,svg}``: accounts compared on one graph; what every graph route shares.

The shared parts (``GraphLook``: format, theme, scale and size; ``GraphSince``/``GraphUntil``;
``image_response``) also serve ``/api/v1/accounts/{id}/graph.{png,svg}``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response

from fedimeter.api.deps import ReadAccess, ServicesDep
from fedimeter.api.schemas import MAX_ID, READ_ERRORS
from fedimeter.domain.when import parse_period
from fedimeter.graphing import MAX_COMPARED, comparison_graph, distinct_compared, graph_options
from fedimeter.graphs import GraphOptions, Metric

__all__ = [
    "GRAPH_RESPONSES",
    "GraphLook",
    "GraphSince",
    "GraphUntil",
    "graph_look",
    "image_response",
    "router",
]

router = APIRouter(tags=["graphs"], responses=READ_ERRORS)

_IMAGE_TYPES = {"png": "image/png", "svg": "image/svg+xml"}

#: The image answer every graph route documents; each adds its own 404 and 422.
GRAPH_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The graph.", "content": {media: {} for media in _IMAGE_TYPES.values()}}
}

GraphSince = Annotated[
    str | None,
    Query(
        description="From this moment: YYYY-MM-DD, an ISO datetime (UTC unless it has an"
        " offset), or an age such as 30d. Default: the first sample."
    ),
]
GraphUntil = Annotated[
    str | None,
    Query(
        description="Up to this moment, same forms; a bare date includes that whole day."
        " Default: now, or the last sample when since is not given either."
    ),
]


def graph_look(
    fmt: Annotated[Literal["png", "svg"], Path(description="png or svg.")],
    theme: Annotated[Literal["light", "dark"], Query(description="light or dark.")] = "light",
    scale: Annotated[float, Query(ge=0.5, le=4, description="2 for high-density screens.")] = 1.0,
    width: Annotated[int, Query(ge=200, le=4000, description="Width in pixels at scale 1.")] = 1000,
    height: Annotated[
        int, Query(ge=150, le=4000, description="Height in pixels at scale 1.")
    ] = 500,
) -> GraphOptions:
    """How the graph is drawn: format from the path, theme, scale and size from the query.

    Raises:
        InvalidInput: a PNG of more pixels than any graph is drawn with (answered 422).
    """
    return graph_options(fmt, theme, scale, width, height)


GraphLook = Annotated[GraphOptions, Depends(graph_look)]


def image_response(image: bytes, options: GraphOptions) -> Response:
    """The image with its media type; ``no-cache`` because the next round changes it."""
    return Response(
        image, media_type=_IMAGE_TYPES[options.fmt], headers={"Cache-Control": "no-cache"}
    )


@router.get(
    "/graph.{fmt}",  # noqa: FAST003 - GraphLook reads fmt
    dependencies=[ReadAccess],
    response_class=Response,
    responses={
        **GRAPH_RESPONSES,
        404: {"description": "An account id that is not tracked."},
        422: {"description": "No id or too many, or a bad metric, period, theme or size."},
    },
)
async def get_comparison_graph(  # noqa: PLR0917 - each query parameter is an argument
    services: ServicesDep,
    look: GraphLook,
    account_id: Annotated[
        list[Annotated[int, Query(ge=1, le=MAX_ID)]],
        Query(
            description=f"The accounts to draw: repeat the parameter, 1 to {MAX_COMPARED}"
            " distinct ids (a repeated id counts once)."
        ),
    ],
    metric: Annotated[Metric, Query(description="followers, following or statuses.")] = (
        "followers"
    ),
    indexed: Annotated[
        bool, Query(description="Each account rebased to 100 at its first sample: growth.")
    ] = False,
    since: GraphSince = None,
    until: GraphUntil = None,
) -> Response:
    """One metric of several accounts on one graph, by count or indexed to 100."""
    ids = distinct_compared(account_id)
    accounts = [await services.repo.get_account(i) for i in ids]
    start, end = parse_period(since, until, services.clock())
    image = await comparison_graph(
        services.repo,
        accounts,
        metric=metric,
        indexed=indexed,
        since=start,
        until=end,
        now=services.clock(),
        options=look,
    )
    return image_response(image, look)
