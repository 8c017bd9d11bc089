"""Routes for admins: sites, their policy, and API keys (create, list, revoke, rotate)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from service.api.schemas import KeyIn, PolicyIn, SiteIn
from service.http.deps import AdminKey, State
from service.http.units import in_session
from service.sites.keys import create_key, key_view, list_keys, revoke_key, rotate_key
from service.sites.sites import create_site, get_site, list_sites, set_policy, site_view

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["admin"])
# A response that carries a key must not be kept by a cache or a browser on the way.
NO_STORE = "no-store"


@router.get("/sites", summary="All sites")
async def get_sites(caller: AdminKey, state: State) -> dict[str, Any]:
    return {"sites": await in_session(state, list_sites)}


@router.post("/sites", status_code=201, summary="Create a site")
async def post_site(payload: SiteIn, caller: AdminKey, state: State) -> dict[str, Any]:
    return await in_session(
        state, lambda session: create_site(session, payload.name, actor=caller.actor)
    )


@router.get("/sites/{site}", summary="One site with its policy")
async def get_one_site(site: str, caller: AdminKey, state: State) -> dict[str, Any]:
    return await in_session(state, lambda session: site_view(get_site(session, site)))


@router.put("/sites/{site}/policy", summary="Replace a site's policy")
async def put_policy(
    site: str, payload: PolicyIn, caller: AdminKey, state: State
) -> dict[str, Any]:
    policy = payload.model_dump()
    return await in_session(
        state, lambda session: set_policy(session, site, policy, actor=caller.actor)
    )


@router.get("/keys", summary="API keys (never the keys themselves)")
async def get_keys(caller: AdminKey, state: State, site: str | None = None) -> dict[str, Any]:
    def read(session: Session) -> list[dict[str, Any]]:
        return list_keys(session, get_site(session, site).id if site else None)

    return {"keys": await in_session(state, read)}


@router.post("/keys", status_code=201, summary="Create a key; it is shown only in this response")
async def post_key(
    payload: KeyIn, caller: AdminKey, state: State, response: Response
) -> dict[str, Any]:
    response.headers["Cache-Control"] = NO_STORE

    def write(session: Session) -> dict[str, Any]:
        get_site(session, payload.site)  # keys are for existing sites: a typo must not make one
        key, plain = create_key(
            session, site_name=payload.site, role=payload.role, name=payload.name
        )
        return {**key_view(key), "key": plain}

    return await in_session(state, write)


@router.delete("/keys/{prefix}", summary="Revoke a key at once")
async def delete_key(prefix: str, caller: AdminKey, state: State) -> dict[str, Any]:
    return await in_session(state, lambda session: key_view(revoke_key(session, prefix[:10])))


@router.post("/keys/{prefix}/rotate", status_code=201, summary="Replace a key with a new one")
async def post_rotate(
    prefix: str,
    caller: AdminKey,
    state: State,
    response: Response,
    grace_seconds: Annotated[
        int, Query(ge=0, le=7 * 86_400, description="How long the old key keeps working")
    ] = 0,
) -> dict[str, Any]:
    response.headers["Cache-Control"] = NO_STORE

    def write(session: Session) -> dict[str, Any]:
        key, plain = rotate_key(session, prefix[:10], grace_seconds=grace_seconds)
        return {**key_view(key), "key": plain}

    return await in_session(state, write)
