"""Coral Talk's external moderation phase, `POST /v1/coral/external-moderation`, and the
admin route that sets the site's Coral signing secret."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter(tags=["compat: Coral"])
