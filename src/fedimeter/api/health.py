"""``/healthz`` (the process answers) and ``/readyz`` (the database is reachable and current)."""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse

from fedimeter.api.deps import ServicesDep
from fedimeter.errors import StorageError
from fedimeter.storage.database import Database

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and answering."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Database unreachable or not migrated."}})
async def readyz(services: ServicesDep) -> JSONResponse:
    """Ready to serve: the database answers and its schema is the newest this version knows."""
    try:
        revision = await services.db.current_revision()
    except StorageError as exc:
        return JSONResponse(
            {"status": "unavailable", "database": str(exc)},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    head = Database.head_revision()
    if revision != head:
        return JSONResponse(
            {"status": "unavailable", "database": f"schema at {revision}, newest is {head}"},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    return JSONResponse({"status": "ready", "database": "ok", "schema": revision})
