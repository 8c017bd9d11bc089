"""Score texts without storing them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from service.api.schemas import ScoreIn, ScoreOut
from service.core.errors import InvalidInput
from service.http.deps import AnyKey, State

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["scoring"])


@router.post("/score", response_model=ScoreOut, summary="Score up to 100 texts; nothing is stored")
async def score(payload: ScoreIn, _: AnyKey, state: State) -> dict[str, Any]:
    limit = state.settings.max_text_chars
    for index, text in enumerate(payload.texts):
        if len(text) > limit:
            raise InvalidInput(
                f"texts.{index} is {len(text)} characters; the limit is {limit}",
                field=f"texts.{index}",
            )
    scorer = state.models.scorer  # one model for the whole request, even if a swap comes
    results = await run_in_threadpool(scorer.score, payload.texts, explain=payload.explain)
    return {"model_version": scorer.version, "results": results}
