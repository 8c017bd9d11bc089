"""Routes for admins: sites, their policy and quota, and API keys (create, list, revoke, rotate).

A site admin key manages its own site; an operator key every site, and alone creates sites,
sets quotas and issues operator keys (see docs/security.md for the whole matrix)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from service.api.schemas import KeyIn, PolicyIn, QuotaIn, RetentionIn, SiteIn, WordListIn
from service.core.tables import Role
from service.http.caller import Caller
from service.http.deps import AdminKey, OperatorKey, State, require_site
from service.http.followups import announce_keys_changed
from service.http.state import AppState
from service.http.units import in_session
from service.moderation.erasure import set_retention
from service.rules.overrides import delete_policy, effective_view, get_policy, put_policy
from service.rules.word_lists import get_list, set_list
from service.sites.keys import (
    check_grant,
    create_key,
    key_view,
    list_keys,
    managed_key,
    revoke_key,
    rotate_key,
)
from service.sites.sites import create_site, get_site, list_sites, set_quota, site_view

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["sites and keys"])
# A response that carries a key must not be kept by a cache or a browser on the way.
NO_STORE = "no-store"


@router.get("/sites", summary="All sites (a site admin key: its own)")
async def get_sites(caller: AdminKey, state: State) -> dict[str, Any]:
    if caller.role == Role.OPERATOR:
        return {"sites": await in_session(state, list_sites)}
    own = await in_session(state, lambda session: site_view(get_site(session, caller.site_name)))
    return {"sites": [own]}


@router.post("/sites", status_code=201, summary="Create a site (operator keys)")
async def post_site(payload: SiteIn, caller: OperatorKey, state: State) -> dict[str, Any]:
    return await in_session(
        state, lambda session: create_site(session, payload.name, actor=caller.actor)
    )


@router.get("/sites/{site}", summary="One site with its policy")
async def get_one_site(site: str, caller: AdminKey, state: State) -> dict[str, Any]:
    require_site(caller, site)
    return await in_session(state, lambda session: site_view(get_site(session, site)))


_POLICY_DOC = (
    "A body names only what it changes; the rest comes from the level above (deployment "
    "defaults, site, section, article). See docs/rules.md for every field and the order."
)


async def _get_level(state: AppState, site: str, scope: str, key: str | None) -> dict[str, Any]:
    return await in_session(state, lambda session: get_policy(session, site, scope, key))


async def _put_level(
    state: AppState, caller: Caller, site: str, scope: str, key: str | None, body: PolicyIn
) -> dict[str, Any]:
    require_site(caller, site)

    def write(session: Session) -> dict[str, Any]:
        return put_policy(
            session,
            site,
            scope,
            key,
            body,
            actor=caller.actor,
            defaults=state.settings.thresholds,
        )

    return await in_session(state, write)


async def _delete_level(
    state: AppState, caller: Caller, site: str, scope: str, key: str | None
) -> dict[str, Any]:
    require_site(caller, site)
    return await in_session(
        state, lambda session: delete_policy(session, site, scope, key, actor=caller.actor)
    )


@router.get("/sites/{site}/policy", summary="A site's own policy body")
async def get_site_policy(site: str, caller: AdminKey, state: State) -> dict[str, Any]:
    require_site(caller, site)
    return await _get_level(state, site, "site", None)


@router.put("/sites/{site}/policy", summary="Replace a site's policy", description=_POLICY_DOC)
async def put_site_policy(
    site: str, payload: PolicyIn, caller: AdminKey, state: State
) -> dict[str, Any]:
    return await _put_level(state, caller, site, "site", None, payload)


@router.delete("/sites/{site}/policy", summary="Back to the deployment's defaults")
async def delete_site_policy(site: str, caller: AdminKey, state: State) -> dict[str, Any]:
    return await _delete_level(state, caller, site, "site", None)


@router.get("/sites/{site}/sections/{section:path}/policy", summary="A section's override")
async def get_section_policy(
    site: str, section: str, caller: AdminKey, state: State
) -> dict[str, Any]:
    require_site(caller, site)
    return await _get_level(state, site, "section", section)


@router.put(
    "/sites/{site}/sections/{section:path}/policy",
    summary="Replace a section's override",
    description=_POLICY_DOC,
)
async def put_section_policy(
    site: str, section: str, payload: PolicyIn, caller: AdminKey, state: State
) -> dict[str, Any]:
    return await _put_level(state, caller, site, "section", section, payload)


@router.delete("/sites/{site}/sections/{section:path}/policy", summary="Drop a section's override")
async def delete_section_policy(
    site: str, section: str, caller: AdminKey, state: State
) -> dict[str, Any]:
    return await _delete_level(state, caller, site, "section", section)


@router.get(
    "/sites/{site}/articles/{article_id:path}/policy",
    summary="An article's override, or (effective=true) the policy its comments meet",
)
async def get_article_policy(
    site: str,
    article_id: str,
    caller: AdminKey,
    state: State,
    effective: bool = False,
    section: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> dict[str, Any]:
    require_site(caller, site)
    if not effective:
        return await _get_level(state, site, "article", article_id)

    def read(session: Session) -> dict[str, Any]:
        return effective_view(
            session,
            site,
            article_id,
            section=section,
            defaults=state.settings.thresholds,
            unsupported_language=state.settings.unsupported_language,
        )

    return await in_session(state, read)


@router.put(
    "/sites/{site}/articles/{article_id:path}/policy",
    summary="Replace an article's override (close it, pre-moderate it, ...)",
    description=_POLICY_DOC,
)
async def put_article_policy(
    site: str, article_id: str, payload: PolicyIn, caller: AdminKey, state: State
) -> dict[str, Any]:
    return await _put_level(state, caller, site, "article", article_id, payload)


@router.delete(
    "/sites/{site}/articles/{article_id:path}/policy", summary="Drop an article's override"
)
async def delete_article_policy(
    site: str, article_id: str, caller: AdminKey, state: State
) -> dict[str, Any]:
    return await _delete_level(state, caller, site, "article", article_id)


@router.get("/sites/{site}/lists/{kind}", summary="A site's banned or suspect word list")
async def get_word_list(site: str, kind: str, caller: AdminKey, state: State) -> dict[str, Any]:
    require_site(caller, site)
    return await in_session(state, lambda session: get_list(session, site, kind))


@router.put(
    "/sites/{site}/lists/{kind}",
    summary="Replace a site's banned (rejected unscored) or suspect (held) word list",
    description=(
        "Entries are words or phrases matched on whole words after normalisation (case, "
        "accents, look-alike letters, leetspeak, zero-width characters); `idiot*` matches any "
        "word beginning so. At most 10,000 entries of 100 characters. Workers follow on their "
        "next batch."
    ),
)
async def put_word_list(
    site: str, kind: str, payload: WordListIn, caller: AdminKey, state: State
) -> dict[str, Any]:
    require_site(caller, site)
    return await in_session(
        state,
        lambda session: set_list(session, site, kind, payload.entries, actor=caller.actor),
    )


@router.put("/sites/{site}/retention", summary="Keep the site's comment text N days (null: always)")
async def put_retention(
    site: str, payload: RetentionIn, caller: AdminKey, state: State
) -> dict[str, Any]:
    require_site(caller, site)
    return await in_session(
        state, lambda session: set_retention(session, site, payload.days, actor=caller.actor)
    )


@router.put("/sites/{site}/quota", summary="Set a site's key quota (operator keys)")
async def put_quota(
    site: str, payload: QuotaIn, caller: OperatorKey, state: State
) -> dict[str, Any]:
    def write(session: Session) -> dict[str, Any]:
        return set_quota(
            session,
            site,
            per_second=payload.requests_per_second,
            burst=payload.burst,
            actor=caller.actor,
        )

    answer = await in_session(state, write)
    await announce_keys_changed(state)
    return answer


@router.get("/keys", summary="API keys (never the keys themselves)")
async def get_keys(caller: AdminKey, state: State, site: str | None = None) -> dict[str, Any]:
    if caller.role != Role.OPERATOR:
        require_site(caller, site or caller.site_name)
        site = caller.site_name

    operators = caller.role == Role.OPERATOR

    def read(session: Session) -> list[dict[str, Any]]:
        return list_keys(session, get_site(session, site).id if site else None, operators=operators)

    return {"keys": await in_session(state, read)}


@router.post("/keys", status_code=201, summary="Create a key; it is shown only in this response")
async def post_key(
    payload: KeyIn, caller: AdminKey, state: State, response: Response
) -> dict[str, Any]:
    response.headers["Cache-Control"] = NO_STORE
    check_grant(
        by_role=caller.role, by_site=caller.site_name, site_name=payload.site, role=payload.role
    )

    def write(session: Session) -> dict[str, Any]:
        get_site(session, payload.site)  # keys are for existing sites: a typo must not make one
        key, plain = create_key(
            session, site_name=payload.site, role=payload.role, name=payload.name
        )
        return {**key_view(key), "key": plain}

    return await in_session(state, write)


@router.delete("/keys/{prefix}", summary="Revoke a key at once")
async def delete_key(prefix: str, caller: AdminKey, state: State) -> dict[str, Any]:
    def write(session: Session) -> dict[str, Any]:
        managed_key(session, prefix[:10], by_role=caller.role, by_site_id=caller.site_id)
        return key_view(revoke_key(session, prefix[:10]))

    answer = await in_session(state, write)
    await announce_keys_changed(state)
    return answer


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
        managed_key(session, prefix[:10], by_role=caller.role, by_site_id=caller.site_id)
        key, plain = rotate_key(session, prefix[:10], grace_seconds=grace_seconds)
        return {**key_view(key), "key": plain}

    answer = await in_session(state, write)
    await announce_keys_changed(state)
    return answer
