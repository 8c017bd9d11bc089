"""OpenAI's moderation endpoint, `POST /v1/moderations`, answered by the site's model and policy."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from service.compat.errors import OpenAIRoute
from service.compat.openai_format import (
    DEFAULT_MODEL,
    ModerationIn,
    ModerationOut,
    OpenAIErrorOut,
    moderation_response,
    texts_of,
)
from service.compat.sites import judge_for_site
from service.http.deps import AnyKey, State

__all__ = ["router"]

router = APIRouter(tags=["compat: OpenAI"], route_class=OpenAIRoute)

# In OpenAI's error shape, not the service's own (the app's defaults for these statuses).
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": OpenAIErrorOut, "description": description}
    for status, description in {
        400: "Bad `input` or `model`, or a body that is not a JSON object; `param` names it.",
        401: "Missing, unknown or revoked API key: `code` is `invalid_api_key`.",
        413: "The body is over the size limit.",
        503: "A dependency is down; retry shortly.",
    }.items()
}


@router.post(
    "/v1/moderations",
    response_model=ModerationOut,
    responses=_ERRORS,
    summary="OpenAI's moderation endpoint: up to 100 texts judged under the site's policy",
)
async def create_moderation(payload: ModerationIn, caller: AnyKey, state: State) -> dict[str, Any]:
    """Any key of the site may score; nothing is stored. `flagged` is true when the site's
    policy would hold the text; docs/migrating-from-perspective.md has the category table."""
    texts = texts_of(payload.input, max_chars=state.settings.max_text_chars)
    judged = await judge_for_site(state, caller.site_id, texts)
    return moderation_response(judged, model=payload.model or DEFAULT_MODEL)
