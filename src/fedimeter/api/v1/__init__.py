"""``/api/v1``: fedimeter's own REST API."""

from fastapi import APIRouter

from fedimeter.api.v1 import accounts, deliveries, graphs, instances, report, runs

router = APIRouter(prefix="/api/v1")
router.include_router(accounts.router)
router.include_router(instances.router)
router.include_router(runs.router)
router.include_router(report.router)
router.include_router(graphs.router)
router.include_router(deliveries.router)

__all__ = ["router"]
