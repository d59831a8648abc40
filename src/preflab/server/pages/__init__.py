"""Server-rendered pages (Jinja2 templates, a little plain JS)."""

from fastapi import APIRouter

from preflab.server.pages import account, admin, admin_gold, live, login, work
from preflab.server.pages import leaderboard as leaderboard_page

router = APIRouter(include_in_schema=False)
router.include_router(login.router)
router.include_router(account.router)
router.include_router(work.router)
router.include_router(admin.router)
router.include_router(admin_gold.router)
router.include_router(live.router)
router.include_router(leaderboard_page.router)

__all__ = ["router"]
