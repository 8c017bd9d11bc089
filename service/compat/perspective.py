"""Perspective's `comments:analyze` and `comments:suggestscore`, at `/v1alpha1/` and at the root
(Coral joins its configured endpoint and `/comments:analyze`), and its discovery document.

Analyze scores in the API process, nothing queued and nothing stored (`doNotStore` or not):
Coral gives up after 800 ms. A suggestion is a moderator's verdict, kept as the key's site's
training label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from service.comments.decisions import Scorer, language_of
from service.compat.batch import Answer, Call, batch_response, parse_batch
from service.compat.discovery import discovery_document
from service.compat.errors import GoogleError, GoogleRoute, as_google
from service.compat.perspective_format import (
    AnalyzeIn,
    SuggestIn,
    analyze_response,
    check_comment,
    language_error,
    parse,
    primary_language,
    requested_attributes,
    sentence_spans,
    suggested_labels,
)
from service.core.tables import Role
from service.http.deps import Anonymous, Caller, State, caller_of
from service.http.state import AppState
from service.http.units import in_session
from service.models.labels import suggest_label
from service.rules.language import ENGLISH, LanguageGuess

__all__ = ["router"]

router = APIRouter(tags=["compat: Perspective"], route_class=GoogleRoute)

Spans = list[tuple[int, int, dict[str, float]]]
ANSWERED_PATHS = ("comments:analyze", "comments:suggestscore")


@dataclass(frozen=True)
class _Credentials:
    key: str | None
    address: str | None


def _credentials(request: Request) -> _Credentials:
    # Google clients send the key as ?key=, or as the X-Goog-Api-Key header.
    key = request.query_params.get("key") or request.headers.get("x-goog-api-key") or None
    return _Credentials(key, request.client.host if request.client else None)


async def _caller(state: AppState, credentials: _Credentials) -> Caller:
    return await caller_of(
        state, credentials.key, roles=Role.ALL, address=credentials.address, field="key"
    )


def _json(raw: bytes) -> Any:
    if not raw.strip():  # a client probing its key sends nothing: an empty request
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise GoogleError(f"Invalid JSON payload received. {exc}") from None


def _score(
    scorer: Scorer, text: str, spans: Sequence[tuple[int, int]]
) -> tuple[LanguageGuess, dict[str, float], Spans]:
    """The text's language, its scores, and each span scored on its own text: one model call,
    and none for a text reliably in another language (it is refused, not scored)."""
    guess = language_of(text)
    if guess.reliable and (guess.language or ENGLISH) != ENGLISH:
        return guess, {}, []
    whole = [(0, len(text))]
    parts = [text[start:end] for start, end in spans] if list(spans) != whole else []
    rows = scorer.predict_proba([text, *parts])
    values = [{a: float(p) for a, p in zip(scorer.attributes, row, strict=True)} for row in rows]
    scored = [(s, e, v) for (s, e), v in zip(spans, values[1:], strict=True)] if parts else []
    return guess, values[0], scored or [(0, len(text), values[0])]


async def _analyze(state: AppState, who: _Credentials, raw: bytes) -> dict[str, Any]:
    await _caller(state, who)
    body = parse(AnalyzeIn, _json(raw))
    text = check_comment(body.comment)
    attributes = requested_attributes(body)
    foreign = [tag for tag in body.languages if primary_language(tag) != ENGLISH]
    if foreign:
        raise language_error(attributes[0].name, foreign, detected=False)
    spans = sentence_spans(text) if body.spanAnnotations else [(0, len(text))]
    guess, summary, scored = await run_in_threadpool(_score, state.models.scorer, text, spans)
    detected = guess.language or ENGLISH
    if guess.reliable and detected != ENGLISH:
        # Never an English score for a comment in another language: the model cannot judge it.
        raise language_error(attributes[0].name, [detected], detected=True)
    return analyze_response(body, attributes, summary=summary, spans=scored, detected=[detected])


async def _suggest(state: AppState, who: _Credentials, raw: bytes) -> dict[str, Any]:
    caller = await _caller(state, who)
    body = parse(SuggestIn, _json(raw))
    text = check_comment(body.comment)
    values = suggested_labels(body)
    guess = await run_in_threadpool(language_of, text)
    await in_session(
        state,
        lambda session: suggest_label(
            session,
            caller.site_id,
            text=text,
            values=values,
            client_token=body.clientToken,
            community_id=body.communityId,
            actor=caller.actor,
        ),
    )
    answer: dict[str, Any] = {
        "detectedLanguages": [guess.language or ENGLISH],
        "requestedLanguages": list(body.languages),
    }
    if body.clientToken is not None:
        answer["clientToken"] = body.clientToken
    return answer


_METHODS = {"analyze": _analyze, "suggestscore": _suggest}


@router.post("/v1alpha1/comments:analyze", summary="Perspective: score a comment")
@router.post("/comments:analyze", include_in_schema=False)
async def analyze(request: Request, state: State) -> dict[str, Any]:
    return await _analyze(state, _credentials(request), await request.body())


@router.post("/v1alpha1/comments:suggestscore", summary="Perspective: a moderator's verdict")
@router.post("/comments:suggestscore", include_in_schema=False)
async def suggestscore(request: Request, state: State) -> dict[str, Any]:
    return await _suggest(state, _credentials(request), await request.body())


async def _answer(state: AppState, call: Call, batch: _Credentials) -> Answer:
    """One call of a batch, answered as it would be alone (its own key, else the batch's)."""
    method = call.path.rsplit(":", 1)[-1] if call.path.endswith(ANSWERED_PATHS) else None
    try:
        if method is None or call.method != "POST":
            raise GoogleError(f"Not a Perspective method: {call.method} {call.path}", code=404)
        who = _Credentials(call.query.get("key") or batch.key, batch.address)
        body = await _METHODS[method](state, who, call.body)
        return Answer(call.content_id, 200, body)
    except Exception as exc:
        error = as_google(exc)
        return Answer(call.content_id, error.code, error.body())


@router.post("/batch", summary="Google's batch: many Perspective calls in one request")
@router.post("/batch/commentanalyzer/v1alpha1", include_in_schema=False)
async def batch(request: Request, state: State) -> Response:
    calls = parse_batch(request.headers.get("content-type", ""), await request.body())
    who = _credentials(request)
    answers = [await _answer(state, call, who) for call in calls]
    content, content_type = batch_response(answers)
    return Response(content, media_type=content_type)


@router.get(
    "/$discovery/rest",
    summary="Perspective's discovery document, pointing here",
    dependencies=[Anonymous],
)
async def discovery(request: Request, state: State, version: str = "v1alpha1") -> dict[str, Any]:
    """Public, the same for every caller: clients fetch it with their key, which it ignores."""
    if version != "v1alpha1":
        raise GoogleError(f"Discovery document for version {version!r} not found.", code=404)
    return discovery_document(state.settings.public_url or str(request.base_url))
