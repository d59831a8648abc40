"""``/api/v1``: everything the pages do, with token or session auth."""

from fastapi import APIRouter

from preflab.server.api.v1 import accounts, endpoints, feedback, gold, live, projects, tasks
from preflab.server.api.v1 import leaderboard as leaderboard_api

router = APIRouter(prefix="/api/v1")
router.include_router(accounts.router)
router.include_router(projects.router)
router.include_router(gold.router)
router.include_router(endpoints.router)
router.include_router(feedback.router)
router.include_router(live.router)
router.include_router(leaderboard_api.router)

# Routes are matched in order, one by one, and each level of included routers costs its own
# matching pass: the app includes the annotators' hot calls (next task, submit) first, on
# their own, then the rest of the API.
hot_router = APIRouter(prefix="/api/v1")
hot_router.include_router(tasks.router)

__all__ = ["hot_router", "router"]
