"""``/api/v1/runs``: start a collection round now, and see what rounds did."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from fedimeter.api.deps import ReadAccess, RepoDep, ServicesDep, WriteAccess
from fedimeter.api.schemas import (
    MAX_ID,
    READ_ERRORS,
    WRITE_ERRORS,
    FailurePublic,
    RunDetail,
    RunPublic,
)

router = APIRouter(prefix="/runs", tags=["runs"], responses=READ_ERRORS)

RunId = Annotated[int, Path(ge=1, le=MAX_ID, description="The round's id.")]


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[WriteAccess],
    responses={**WRITE_ERRORS, 503: {"description": "The database is unavailable."}},
)
async def start_run(services: ServicesDep) -> RunPublic:
    """Start a round now; while one runs, answer with that one instead of starting another."""
    return RunPublic.of(await services.rounds.start())


@router.get("", dependencies=[ReadAccess])
async def list_runs(
    repo: RepoDep, limit: Annotated[int, Query(ge=1, le=500)] = 20
) -> list[RunPublic]:
    """The most recent rounds, newest first."""
    return [RunPublic.of(r) for r in await repo.list_runs(limit)]


@router.get(
    "/{run_id}", dependencies=[ReadAccess], responses={404: {"description": "No such round."}}
)
async def get_run(run_id: RunId, repo: RepoDep) -> RunDetail:
    """One round with the reason for each account it could not measure."""
    run = await repo.get_run(run_id)
    failures = await repo.run_failures([run_id])
    return RunDetail(
        **RunPublic.of(run).model_dump(), failures=[FailurePublic.of(f) for f in failures]
    )
