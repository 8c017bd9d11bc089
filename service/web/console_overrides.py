"""The admin console's overrides: the site's articles and sections, found by a part of their
name, each with its own policy, what its comments meet, and a form to change or drop it."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session
from starlette.responses import Response

from service.core.errors import ModerationError
from service.core.settings import Settings
from service.http.state import state_of
from service.http.units import run_unit
from service.moderation.articles import LIST_LIMIT, site_articles, site_sections
from service.rules.overrides import delete_policy, effective_view, get_policy, put_policy
from service.rules.policy_body import merge_policies
from service.web.console import saved_notice
from service.web.deps import CheckedForm, Moderator, SignedInAdmin, WebRoute, html_page
from service.web.policy_form import (
    FieldError,
    FormInvalid,
    PolicyFields,
    body_of,
    deployment_policy,
    domain_error,
    fields_of,
    posted_fields,
)

__all__ = ["router"]

router = APIRouter(prefix="/moderate/admin", route_class=WebRoute, include_in_schema=False)

# The console's paths for each scope an override has, and what the pages call them.
_PATHS = {"article": "articles", "section": "sections"}
_NOUNS = {"article": "Article", "section": "Section"}


def override_url(scope: str, key: str) -> str:
    # Ids are the site's own and may hold anything: the path parameter takes slashes as they
    # are, everything else that means something in a URL is quoted.
    return f"/moderate/admin/{_PATHS[scope]}/{quote(key, safe='/')}"


def _search(request: Request, me: Moderator, *, scope: str, q: str | None) -> HTMLResponse:
    query = (q or "").strip() or None
    listing = site_articles if scope == "article" else site_sections
    rows = run_unit(
        state_of(request).sessions,
        lambda session: listing(session, me.caller.site_id, query=query),
    )
    return html_page(
        request,
        "admin_threads.html",
        moderator=me,
        scope=scope,
        noun=_NOUNS[scope],
        path=_PATHS[scope],
        rows=rows,
        q=query or "",
        exact=query is not None and any(row.key == query for row in rows),
        limit=LIST_LIMIT,
        url_of=lambda key: override_url(scope, key),
    )


@router.get("/articles")
def articles_page(request: Request, me: SignedInAdmin, q: str | None = None) -> HTMLResponse:
    """The site's articles, latest comment first, with their comments and hold rates."""
    return _search(request, me, scope="article", q=q)


@router.get("/sections")
def sections_page(request: Request, me: SignedInAdmin, q: str | None = None) -> HTMLResponse:
    """The site's sections, as the articles are listed."""
    return _search(request, me, scope="section", q=q)


def _effective(
    session: Session, me: Moderator, *, settings: Settings, scope: str, key: str
) -> dict[str, Any]:
    """What the level's comments meet: an article's as the pipeline resolves it; a section's
    as its articles meet it unless they override it."""
    site = me.caller.site_name
    if scope == "article":
        return effective_view(
            session,
            site,
            key,
            section=None,
            defaults=settings.thresholds,
            unsupported_language=settings.unsupported_language,
        )
    levels = [get_policy(session, site, level, k)["policy"] for level, k in _above(scope, key)]
    merged = merge_policies(deployment_policy(settings), *levels)
    return {"section": key, "from": ["defaults", "site", "section"], "policy": merged}


def _above(scope: str, key: str, section: str | None = None) -> list[tuple[str, str | None]]:
    """The levels a body is merged over, then the level itself (an article's section, when
    its comments name one)."""
    levels: list[tuple[str, str | None]] = [("site", None)]
    if scope == "article" and section:
        levels.append(("section", section))
    return [*levels, (scope, key)]


def _override_context(
    session: Session,
    me: Moderator,
    *,
    settings: Settings,
    scope: str,
    key: str,
    fields: PolicyFields | None,
) -> dict[str, Any]:
    own = get_policy(session, me.caller.site_name, scope, key)
    effective = _effective(session, me, settings=settings, scope=scope, key=key)
    parents = _above(scope, key, effective.get("section"))[:-1]
    inherited = merge_policies(
        deployment_policy(settings),
        *(get_policy(session, me.caller.site_name, level, k)["policy"] for level, k in parents),
    )
    return {
        "own": own,
        "fields": fields or fields_of(own["policy"]),
        "effective": effective,
        "inherited": inherited,
    }


def _override_page(
    request: Request,
    me: Moderator,
    *,
    scope: str,
    key: str,
    status_code: int = 200,
    fields: PolicyFields | None = None,
    errors: list[FieldError] | None = None,
    notice: str | None = None,
) -> HTMLResponse:
    state = state_of(request)
    context = run_unit(
        state.sessions,
        lambda session: _override_context(
            session, me, settings=state.settings, scope=scope, key=key, fields=fields
        ),
    )
    return html_page(
        request,
        "admin_override.html",
        status_code=status_code,
        moderator=me,
        scope=scope,
        key=key,
        noun=_NOUNS[scope],
        path=_PATHS[scope],
        action_url=override_url(scope, key),
        errors=errors or [],
        notice=notice,
        **context,
    )


def _save_override(
    request: Request, me: Moderator, *, scope: str, key: str, fields: PolicyFields, drop: bool
) -> Response:
    """Replace the level's body with the form's, or drop it; a refusal re-renders the form."""
    state = state_of(request)
    actor = me.caller.actor

    def save(session: Session) -> None:
        if drop:
            delete_policy(session, me.caller.site_name, scope, key, actor=actor)
            return
        body = body_of(fields)
        defaults = state.settings.thresholds
        put_policy(session, me.caller.site_name, scope, key, body, actor=actor, defaults=defaults)

    try:
        run_unit(state.sessions, save)
    except FormInvalid as exc:
        return _override_page(
            request, me, scope=scope, key=key, status_code=422, fields=fields, errors=exc.errors
        )
    except ModerationError as exc:
        status, errors = exc.status_code, [domain_error(exc)]
        return _override_page(
            request, me, scope=scope, key=key, status_code=status, fields=fields, errors=errors
        )
    done = "deleted" if drop else "saved"
    return RedirectResponse(f"{override_url(scope, key)}?done={done}", status_code=303)


@router.get("/articles/{article_id:path}")
def article_page(
    request: Request, me: SignedInAdmin, article_id: str, done: str | None = None
) -> HTMLResponse:
    """An article's own policy, the policy its next comment meets, and the form to change it."""
    return _override_page(request, me, scope="article", key=article_id, notice=saved_notice(done))


@router.post("/articles/{article_id:path}")
def save_article(
    request: Request, article_id: str, me: SignedInAdmin, form: CheckedForm
) -> Response:
    """Save the article's override (action=save) or drop it (action=delete)."""
    drop = form.get("action") == "delete"
    return _save_override(
        request, me, scope="article", key=article_id, fields=posted_fields(form), drop=drop
    )


@router.get("/sections/{section:path}")
def section_page(
    request: Request, me: SignedInAdmin, section: str, done: str | None = None
) -> HTMLResponse:
    """A section's own policy, what its articles meet, and the form to change it."""
    return _override_page(request, me, scope="section", key=section, notice=saved_notice(done))


@router.post("/sections/{section:path}")
def save_section(request: Request, section: str, me: SignedInAdmin, form: CheckedForm) -> Response:
    """Save the section's override (action=save) or drop it (action=delete)."""
    drop = form.get("action") == "delete"
    return _save_override(
        request, me, scope="section", key=section, fields=posted_fields(form), drop=drop
    )
