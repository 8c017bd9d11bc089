"""Coral Talk's external moderation phase, `POST /v1/coral/external-moderation`, and the
admin routes that set the site's Coral signing secret."""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import ORJSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from service.compat.coral_format import (
    SIGNATURE_HEADER,
    UNSCORED_ROLES,
    coral_answer,
    html_to_text,
    parse_request,
    signature_matches,
)
from service.compat.sites import judge_for_site
from service.core.errors import AuthError
from service.core.tables import Role
from service.http.deps import AdminKey, State, caller_of, require_site
from service.http.units import in_session
from service.sites.coral import (
    MAX_SIGNING_SECRET_LENGTH,
    MIN_SIGNING_SECRET_LENGTH,
    coral_signing_secret,
    coral_signing_secret_set,
    remove_coral_signing_secret,
    set_coral_signing_secret,
)

__all__ = ["router"]

log = structlog.get_logger(__name__)

router = APIRouter(tags=["compat: Coral"])

SiteName = Annotated[str, Path(min_length=1, max_length=100, description="The site's name.")]


class CoralSecretIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    signing_secret: str = Field(
        min_length=MIN_SIGNING_SECRET_LENGTH,
        max_length=MAX_SIGNING_SECRET_LENGTH,
        description="The signing secret Coral shows for the external moderation phase.",
    )


class CoralSecretOut(BaseModel):
    site: str
    signing_secret_set: bool


_ANSWERS: dict[int | str, dict[str, Any]] = {
    204: {"description": "No objection: the comment goes on through Coral's other phases."},
    200: {
        "description": "Withheld for a moderator (`SYSTEM_WITHHELD`), or `REJECTED`.",
        "content": {
            "application/json": {
                "example": {
                    "status": "SYSTEM_WITHHELD",
                    "actions": [{"actionType": "FLAG", "reason": "COMMENT_DETECTED_TOXIC"}],
                }
            }
        },
    },
    401: {"description": "Unknown key, no signing secret set, or a missing or wrong signature."},
}


@router.post(
    "/v1/coral/external-moderation",
    status_code=204,
    response_class=Response,
    responses=_ANSWERS,
    summary="Coral's external moderation phase: judge a new or edited comment",
)
async def external_moderation(
    request: Request,
    state: State,
    key: Annotated[
        str | None, Query(max_length=200, description="A submitter or site admin key of the site.")
    ] = None,
) -> Response:
    address = request.client.host if request.client else None
    roles = (Role.SUBMITTER, *Role.ADMINS)
    caller = await caller_of(state, key, roles=roles, address=address, field="key")
    secret = await in_session(state, lambda session: coral_signing_secret(session, caller.site_id))
    raw = await request.body()  # the signature is over these bytes, before any parsing
    if secret is None:
        raise AuthError(
            "no Coral signing secret is set for this site (PUT /v1/sites/{site}/coral)",
            field=SIGNATURE_HEADER,
        )
    if not signature_matches(secret, raw, header=request.headers.get(SIGNATURE_HEADER)):
        log.warning("coral_signature_refused", site_id=caller.site_id)
        raise AuthError(
            f"missing {SIGNATURE_HEADER} header, or none of its signatures is the body's",
            field=SIGNATURE_HEADER,
        )
    call = parse_request(raw)
    text = html_to_text(call.comment.body)
    if call.author.role in UNSCORED_ROLES or not text:
        return Response(status_code=204)
    story = call.story.id if call.story is not None else None
    (judged,) = await judge_for_site(
        state, caller.site_id, [text], author_id=call.author.id, article_id=story
    )
    answer = coral_answer(judged.verdict)
    return Response(status_code=204) if answer is None else ORJSONResponse(answer)


@router.put(
    "/v1/sites/{site}/coral",
    response_model=CoralSecretOut,
    summary="Set the secret Coral signs the site's external moderation calls with (site admin)",
)
async def put_coral_secret(
    site: SiteName, payload: CoralSecretIn, caller: AdminKey, state: State
) -> dict[str, Any]:
    require_site(caller, site)

    def write(session: Session) -> str:
        return set_coral_signing_secret(
            session, site, secret=payload.signing_secret, actor=caller.actor
        )

    name = await in_session(state, write)
    return {"site": name, "signing_secret_set": True}  # the secret is never shown again


@router.get(
    "/v1/sites/{site}/coral",
    response_model=CoralSecretOut,
    summary="Whether the site has a Coral signing secret (site admin)",
)
async def read_coral_secret(site: SiteName, caller: AdminKey, state: State) -> dict[str, Any]:
    require_site(caller, site)
    is_set = await in_session(state, lambda session: coral_signing_secret_set(session, site))
    return {"site": site, "signing_secret_set": is_set}


@router.delete(
    "/v1/sites/{site}/coral",
    status_code=204,
    response_class=Response,
    summary="Forget the site's Coral signing secret: its calls are refused (site admin)",
)
async def delete_coral_secret(site: SiteName, caller: AdminKey, state: State) -> Response:
    require_site(caller, site)

    def write(session: Session) -> None:
        remove_coral_signing_secret(session, site, actor=caller.actor)

    await in_session(state, write)
    return Response(status_code=204)
