"""The admin console's API keys: the site's keys listed, created, rotated and revoked through
the functions the API's key routes call, each new key shown once."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session
from starlette.responses import Response

from service.core.errors import InvalidInput, ModerationError
from service.core.tables import Role
from service.http.followups import announce_keys_changed
from service.http.state import state_of
from service.http.units import in_session, run_unit
from service.sites.keys import (
    check_grant,
    create_key,
    key_view,
    list_keys,
    managed_key,
    revoke_key,
    rotate_key,
)
from service.web.console import saved_notice
from service.web.console_forms import (
    Refusal,
    confirm_first,
    console_page,
    refusal,
    short_text,
    shown_once,
    whole_number,
)
from service.web.deps import CheckedForm, Moderator, SignedInAdmin, WebRoute

__all__ = ["router"]

router = APIRouter(prefix="/moderate/admin", route_class=WebRoute, include_in_schema=False)

KEYS = "/moderate/admin/keys"
# What a site admin may issue (service.sites.keys.check_grant); operator keys are the
# deployment's, made with `moderation keys create`, not from one site's console.
KEY_ROLES = (Role.SUBMITTER, Role.MODERATOR, Role.SITE_ADMIN)
# A site backend switching to a rotated key needs a deploy or a config reload: ten minutes.
DEFAULT_GRACE_SECONDS = 600
MAX_GRACE_SECONDS = 7 * 86_400  # the API's limit
_ANCHORS = {"name": "f-name", "role": "f-role"}


def _keys_page(
    request: Request,
    me: Moderator,
    *,
    status_code: int = 200,
    errors: list[Refusal] | None = None,
    notice: str | None = None,
    posted: dict[str, str] | None = None,
    rotating: str | None = None,
) -> HTMLResponse:
    """The site's keys; `posted` is the create form as typed, `rotating` the key whose
    rotation was refused (its grace field is the one marked)."""
    caller = me.caller

    def read(session: Session) -> dict[str, Any]:
        operators = caller.role == Role.OPERATOR
        return {"keys": list_keys(session, caller.site_id, operators=operators)}

    return console_page(
        request,
        me,
        "admin_keys.html",
        read,
        status_code=status_code,
        errors=errors or [],
        notice=notice,
        roles=KEY_ROLES,
        posted=posted or {},
        rotating=rotating,
        grace=DEFAULT_GRACE_SECONDS,
        max_grace=MAX_GRACE_SECONDS,
    )


async def _refused_page(request: Request, me: Moderator, **page: Any) -> HTMLResponse:
    # The rotate and revoke routes are async, to tell the API processes once committed (as
    # the API's do); the page still reads the database off the event loop.
    return await run_in_threadpool(partial(_keys_page, request, me, **page))


def _key_shown(request: Request, me: Moderator, title: str, plain: str, *, about: str) -> Response:
    return shown_once(
        request,
        me,
        title=title,
        secret=plain,
        about=about,
        back=KEYS,
        back_label="Back to the keys",
    )


@router.get("/keys")
def keys_page(request: Request, me: SignedInAdmin, done: str | None = None) -> HTMLResponse:
    """The site's keys: prefix, role, name, when made and revoked; never the keys."""
    return _keys_page(request, me, notice=saved_notice(done))


@router.post("/keys")
def create_key_form(request: Request, me: SignedInAdmin, form: CheckedForm) -> Response:
    """A new key for the site, shown on the page this post answers and never again."""
    caller = me.caller
    posted = {"name": form.get("name") or "", "role": form.get("role") or ""}
    try:
        name = short_text(form, "name", what="the key's name", max_length=100, required=False)
        if posted["role"] not in KEY_ROLES:
            raise InvalidInput(f"a key's role is one of: {', '.join(KEY_ROLES)}", field="role")
        site, role = caller.site_name, posted["role"]
        check_grant(by_role=caller.role, by_site=site, site_name=site, role=role)

        def write(session: Session) -> tuple[dict[str, Any], str]:
            key, plain = create_key(session, site_name=site, role=role, name=name)
            return key_view(key), plain

        view, plain = run_unit(state_of(request).sessions, write)
    except ModerationError as exc:
        problem = refusal(exc, anchors=_ANCHORS, default="create")
        return _keys_page(request, me, status_code=exc.status_code, errors=[problem], posted=posted)
    return _key_shown(
        request,
        me,
        f"New {view['role']} key {view['prefix']}",
        plain,
        about=f"The {view['role']} key “{view['name'] or 'unnamed'}” of {view['site']}.",
    )


@router.post("/keys/{prefix}/rotate")
async def rotate_key_form(
    request: Request, prefix: str, me: SignedInAdmin, form: CheckedForm
) -> Response:
    """A new key in place of `prefix`, which keeps working for the grace period."""
    caller, state = me.caller, state_of(request)
    try:
        grace = whole_number(
            form, "grace_seconds", default=DEFAULT_GRACE_SECONDS, low=0, high=MAX_GRACE_SECONDS
        )

        def write(session: Session) -> tuple[dict[str, Any], str]:
            managed_key(session, prefix[:10], by_role=caller.role, by_site_id=caller.site_id)
            key, plain = rotate_key(session, prefix[:10], grace_seconds=grace)
            return key_view(key), plain

        view, plain = await in_session(state, write)
    except ModerationError as exc:
        problem = refusal(exc, anchors={"grace_seconds": f"grace-{prefix}"}, default="key-list")
        return await _refused_page(
            request, me, status_code=exc.status_code, errors=[problem], rotating=prefix
        )
    # Every API process forgets the keys it remembered, as after the API's rotate.
    await announce_keys_changed(state)
    return _key_shown(
        request,
        me,
        f"Key {prefix} rotated: the new key is {view['prefix']}",
        plain,
        about=(
            f"It replaces {prefix}, which keeps working for {grace:,} seconds more, so the "
            "backend using it can switch without a failed request."
        ),
    )


@router.post("/keys/{prefix}/revoke")
async def revoke_key_form(
    request: Request, prefix: str, me: SignedInAdmin, form: CheckedForm
) -> Response:
    """Revoke a key at once, after a confirmation page."""
    caller, state = me.caller, state_of(request)

    def read(session: Session) -> dict[str, Any]:
        return key_view(
            managed_key(session, prefix[:10], by_role=caller.role, by_site_id=caller.site_id)
        )

    def write(session: Session) -> None:
        managed_key(session, prefix[:10], by_role=caller.role, by_site_id=caller.site_id)
        revoke_key(session, prefix[:10])

    try:
        view = await in_session(state, read)
        own = " This is the key you are signed in with: you will be signed out." * (
            view["prefix"] == caller.key_prefix
        )
        confirm = confirm_first(
            request,
            me,
            form,
            title=f"Revoke key {view['prefix']}?",
            question=(
                f"The {view['role']} key “{view['name'] or 'unnamed'}” stops working at once: "
                f"every request with it is refused from now on.{own}"
            ),
            button="Revoke the key",
            back=KEYS,
        )
        if confirm is not None:
            return confirm
        await in_session(state, write)
    except ModerationError as exc:
        problem = refusal(exc, anchors={}, default="key-list")
        return await _refused_page(request, me, status_code=exc.status_code, errors=[problem])
    await announce_keys_changed(state)
    return RedirectResponse(f"{KEYS}?done=revoked", status_code=303)
