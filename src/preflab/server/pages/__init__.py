"""Server-rendered pages (Jinja2 templates, a little plain JS)."""

from fastapi import APIRouter

from preflab.server.pages import admin, login, work

router = APIRouter(include_in_schema=False)
router.include_router(login.router)
router.include_router(work.router)
router.include_router(admin.router)

__all__ = ["router"]
