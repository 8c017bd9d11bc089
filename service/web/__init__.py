"""The moderators' web pages under /moderate: server-rendered, signed in with a moderator key;
the site admins' console under /moderate/admin, on the same sign-in."""

from __future__ import annotations

from fastapi import APIRouter

from service.web import (
    actions,
    console,
    console_keys,
    console_models,
    console_overrides,
    console_webhooks,
    pages,
)

__all__ = ["router"]

router = APIRouter()
router.include_router(pages.router)
router.include_router(actions.router)
router.include_router(console.router)
router.include_router(console_overrides.router)
router.include_router(console_keys.router)
router.include_router(console_webhooks.router)
router.include_router(console_models.router)
