"""``/api/v1``: everything the pages do, with token or session auth."""

from fastapi import APIRouter

from preflab.server.api.v1 import accounts, projects, tasks

router = APIRouter(prefix="/api/v1")
router.include_router(accounts.router)
router.include_router(projects.router)
router.include_router(tasks.router)

__all__ = ["router"]
