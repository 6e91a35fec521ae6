"""``/api/v1``: fedimeter's own REST API."""

from fastapi import APIRouter

from fedimeter.api.v1 import accounts, deliveries, graphs, instances, report, runs
from fedimeter.api.v1 import alerts as alerts_routes
from fedimeter.api.v1 import engagement as engagement_routes
from fedimeter.api.v1 import tags as tags_routes

router = APIRouter(prefix="/api/v1")
router.include_router(accounts.router)
router.include_router(engagement_routes.router)
router.include_router(instances.router)
router.include_router(runs.router)
router.include_router(report.router)
router.include_router(graphs.router)
router.include_router(deliveries.router)
router.include_router(alerts_routes.router)
router.include_router(tags_routes.router)
router.include_router(tags_routes.trends_router)
router.include_router(tags_routes.recorded_trends_router)

__all__ = ["router"]
