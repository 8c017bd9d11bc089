"""The moderators' web pages under /moderate: server-rendered, signed in with a moderator key."""

from __future__ import annotations

from fastapi import APIRouter

from service.web import actions, pages

__all__ = ["router"]

router = APIRouter()
router.include_router(pages.router)
router.include_router(actions.router)
