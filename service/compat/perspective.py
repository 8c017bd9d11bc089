"""Perspective's `comments:analyze` and `comments:suggestscore`, at `/v1alpha1/` and at the root."""

from __future__ import annotations

from fastapi import APIRouter

from service.compat.errors import GoogleRoute

__all__ = ["router"]

router = APIRouter(tags=["compat: Perspective"], route_class=GoogleRoute)
