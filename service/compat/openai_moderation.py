"""OpenAI's moderation endpoint, `POST /v1/moderations`, answered by the site's model and policy."""

from __future__ import annotations

from fastapi import APIRouter

from service.compat.errors import OpenAIRoute

__all__ = ["router"]

router = APIRouter(tags=["compat: OpenAI"], route_class=OpenAIRoute)
