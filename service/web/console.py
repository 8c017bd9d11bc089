"""The site admins' console under /moderate/admin: its home, the site's policy with what its
thresholds would have held, and the word lists. Overrides are in console_overrides.py."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session
from starlette.responses import Response

from classifier import ATTRIBUTES
from service.core.errors import InvalidInput, ModerationError
from service.core.settings import Settings
from service.http.state import state_of
from service.http.units import run_unit
from service.moderation.threshold_preview import PREVIEW_WINDOW, preview_thresholds
from service.rules.overrides import get_policy, put_policy
from service.rules.word_lists import KINDS, get_list, set_list
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

_SAVED = {
    "saved": "Saved.",
    "deleted": "Deleted: it inherits again.",
    "revoked": "Revoked: the key no longer works.",
    "removed": "Removed.",
    "retried": "Queued: the delivery is sent again within seconds.",
    "started": "Retraining started: its progress is below.",
    "promoted": "Promoted: every process follows the new active model within seconds.",
    "rolled_back": "Rolled back: every process follows within seconds.",
}


def saved_notice(done: str | None) -> str | None:
    return _SAVED.get(done or "")


@router.get("")
def console_home(request: Request, me: SignedInAdmin) -> HTMLResponse:
    """The console's sections, for a site admin or an operator signed in as for the queue."""
    return html_page(request, "admin_home.html", moderator=me)


def _thresholds(defaults: Mapping[str, float], body: Mapping[str, Any]) -> dict[str, float]:
    """The thresholds a site body puts in force: its own, else the deployment's."""
    own = body.get("thresholds") or {}
    return {a: float(own.get(a, defaults[a])) for a in ATTRIBUTES}


def _policy_context(
    session: Session,
    me: Moderator,
    settings: Settings,
    *,
    fields: PolicyFields | None = None,
    trial: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The site's policy page: its own body (or the fields as posted) and, beside each
    threshold, what it would have held; `trial` is a body to preview instead of the stored."""
    own = get_policy(session, me.caller.site_name, "site", None)["policy"]
    previewed = _thresholds(settings.thresholds, trial if trial is not None else own)
    return {
        "fields": fields or fields_of(own),
        "inherited": deployment_policy(settings),
        "preview": preview_thresholds(session, me.caller.site_id, previewed),
        "previewed": previewed,
        "window": PREVIEW_WINDOW,
        "trial": trial is not None,
    }


def _policy_page(
    request: Request,
    me: Moderator,
    *,
    status_code: int = 200,
    errors: list[FieldError] | None = None,
    notice: str | None = None,
    **context: Any,
) -> HTMLResponse:
    state = state_of(request)
    found = run_unit(
        state.sessions, lambda session: _policy_context(session, me, state.settings, **context)
    )
    return html_page(
        request,
        "admin_policy.html",
        status_code=status_code,
        moderator=me,
        errors=errors or [],
        notice=notice,
        **found,
    )


@router.get("/policy")
def policy_page(request: Request, me: SignedInAdmin, done: str | None = None) -> HTMLResponse:
    """The site's own policy as a form, each threshold with its hold rate and recall."""
    return _policy_page(request, me, notice=saved_notice(done))


@router.post("/policy")
def save_policy(request: Request, me: SignedInAdmin, form: CheckedForm) -> Response:
    """Save the site's policy, or (action=preview) show what it would hold, saving nothing."""
    fields = posted_fields(form)
    state = state_of(request)
    try:
        body = body_of(fields)
        if form.get("action") == "preview":
            return _policy_page(request, me, fields=fields, trial=body.stored())
        run_unit(
            state.sessions,
            lambda session: put_policy(
                session,
                me.caller.site_name,
                "site",
                None,
                body,
                actor=me.caller.actor,
                defaults=state.settings.thresholds,
            ),
        )
    except FormInvalid as exc:
        return _policy_page(request, me, status_code=422, fields=fields, errors=exc.errors)
    except ModerationError as exc:
        errors = [domain_error(exc)]
        return _policy_page(request, me, status_code=exc.status_code, fields=fields, errors=errors)
    return RedirectResponse("/moderate/admin/policy?done=saved", status_code=303)


def entries_of(text: str) -> tuple[list[str], list[int]]:
    """A textarea's entries, one a line, blank lines skipped, with each entry's line number
    so that an error about `entries[i]` can say which line to correct."""
    entries, lines = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            entries.append(line.strip())
            lines.append(number)
    return entries, lines


def _list_error(exc: ModerationError, lines: list[int]) -> FieldError:
    field = exc.field or "entries"
    if field.startswith("entries[") and field.endswith("]") and field[8:-1].isdigit():
        index = int(field[8:-1])
        if index < len(lines):
            return FieldError(field, f"line {lines[index]}: {exc.detail}")
    return FieldError(field, exc.detail)


def _lists_page(
    request: Request,
    me: Moderator,
    *,
    status_code: int = 200,
    posted: tuple[str, str] | None = None,
    error: FieldError | None = None,
    notice: str | None = None,
) -> HTMLResponse:
    """Both lists; `posted` is a (kind, text) refused, shown as typed beside its error."""

    def read(session: Session) -> dict[str, str]:
        texts = {}
        for kind in KINDS:
            entries = get_list(session, me.caller.site_name, kind)["entries"]
            texts[kind] = "\n".join(entries if isinstance(entries, list) else [])
        return texts

    texts = run_unit(state_of(request).sessions, read)
    if posted is not None:
        texts[posted[0]] = posted[1]
    return html_page(
        request,
        "admin_lists.html",
        status_code=status_code,
        moderator=me,
        texts=texts,
        error=error,
        error_kind=posted[0] if posted else None,
        notice=notice,
    )


@router.get("/lists")
def lists_page(request: Request, me: SignedInAdmin, done: str | None = None) -> HTMLResponse:
    """The banned and suspect lists, one entry a line."""
    return _lists_page(request, me, notice=saved_notice(done))


@router.post("/lists/{kind}")
def save_list(request: Request, kind: str, me: SignedInAdmin, form: CheckedForm) -> Response:
    """Replace one list; a refused entry changes nothing and is named by its line."""
    text = form.get("entries") or ""
    entries, lines = entries_of(text)
    if kind not in KINDS:
        raise InvalidInput(f"a word list is one of: {', '.join(KINDS)}", field="kind")

    def save(session: Session) -> None:
        set_list(session, me.caller.site_name, kind, entries, actor=me.caller.actor)

    try:
        run_unit(state_of(request).sessions, save)
    except ModerationError as exc:
        error = _list_error(exc, lines)
        return _lists_page(
            request, me, status_code=exc.status_code, posted=(kind, text), error=error
        )
    return RedirectResponse(f"/moderate/admin/lists?done=saved#{kind}", status_code=303)
