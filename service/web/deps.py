"""What every moderator page needs: the signed-in key, checked forms, HTML and error responses."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import structlog
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.responses import Response

from service.core.errors import Forbidden, ModerationError
from service.core.settings import Settings
from service.core.tables import ApiKey, Role, utcnow
from service.http.deps import Caller
from service.http.state import state_of
from service.http.units import run_unit
from service.web.auth import (
    COOKIE_NAME,
    WebSession,
    load_secret,
    read_session,
    seal_session,
    seen_now,
    tokens_match,
)
from service.web.render import environment
from service.web.sessions import session_ended

__all__ = [
    "SIGN_IN_ROLES",
    "CheckedForm",
    "CsrfRejected",
    "Form",
    "Moderator",
    "SignInRequired",
    "SignedIn",
    "SignedInAdmin",
    "SignedInAdminPolling",
    "SignedInPolling",
    "WebRoute",
    "check_csrf",
    "current_session",
    "html_page",
    "read_form",
    "safe_next",
    "set_session_cookie",
    "wants_json",
    "with_params",
]

log = structlog.get_logger(__name__)

SIGN_IN_ROLES = (Role.MODERATOR, *Role.ADMINS)
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
# A signed-in cookie is re-issued (slid) once it is this old, so most requests set no cookie;
# an idle limit under four minutes (tests) re-issues sooner, to slide before it runs out.
_REISSUE_AFTER_SECONDS = 60.0
# Every page: no framing, no third-party script or style even if some text slipped through
# unescaped, and forms may post only back here.
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
        "object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class SignInRequired(Exception):
    """No valid session, or its key was revoked or lost its role: off to the sign-in page."""

    def __init__(self, ended: bool = False) -> None:
        super().__init__("sign in required")
        self.ended = ended


class CsrfRejected(Exception):
    """A POST without the session's CSRF token; nothing was changed."""


@dataclass(frozen=True)
class Moderator:
    caller: Caller
    session: WebSession

    @property
    def csrf(self) -> str:
        return self.session.csrf


@dataclass(frozen=True)
class Form:
    """A posted urlencoded form; fields may repeat (the ids of a bulk review)."""

    fields: dict[str, list[str]]

    def get(self, name: str) -> str | None:
        values = self.fields.get(name)
        return values[0] if values else None

    def getlist(self, name: str) -> list[str]:
        return self.fields.get(name, [])


def current_session(request: Request) -> WebSession | None:
    settings = state_of(request).settings
    return read_session(
        load_secret(settings),
        request.cookies.get(COOKIE_NAME),
        lifetime_seconds=settings.web_session_hours * 3600,
        idle_seconds=settings.web_session_idle_minutes * 60,
    )


def set_session_cookie(request: Request, response: Response, session: WebSession) -> None:
    """Issue the session's cookie, stamped as seen now; the browser keeps it no longer than
    the session may live from its start."""
    settings = state_of(request).settings
    seen = seen_now(session)
    remaining = session.issued_at + settings.web_session_hours * 3600 - seen.seen_at
    response.set_cookie(
        COOKIE_NAME,
        seal_session(load_secret(settings), seen),
        max_age=max(0, int(remaining)),
        path="/moderate",
        httponly=True,
        samesite="lax",
        # Behind a TLS proxy the request itself is plain http: the public URL says https.
        secure=request.url.scheme == "https" or settings.public_url.startswith("https://"),
    )


def _due_for_reissue(settings: Settings, session: WebSession) -> bool:
    reissue_after = min(_REISSUE_AFTER_SECONDS, settings.web_session_idle_minutes * 60 / 4)
    return time.time() - session.seen_at >= reissue_after


def _signed_in(request: Request, *, activity: bool) -> Moderator:
    """The moderator of this request, re-checked against the database on every request so a
    revoked key's sessions stop at once. Activity slides the idle limit: WebRoute re-issues
    the cookie on the response once it is due."""
    web = current_session(request)
    if web is None or web.key_id is None:
        raise SignInRequired()
    key_id = web.key_id

    def check(session: Session) -> Caller:
        key = session.get(ApiKey, key_id)
        # revoked_at may lie ahead: a rotated key keeps working through its grace period.
        revoked = key is not None and key.revoked_at is not None and key.revoked_at <= utcnow()
        if key is None or revoked or key.role not in SIGN_IN_ROLES or session_ended(session, web):
            raise SignInRequired(ended=True)
        return Caller.of(key)

    moderator = Moderator(run_unit(state_of(request).sessions, check), web)
    if activity and _due_for_reissue(state_of(request).settings, web):
        request.state.reissue_session = web
    return moderator


def signed_in(request: Request) -> Moderator:
    return _signed_in(request, activity=True)


def signed_in_polling(request: Request) -> Moderator:
    # The queue page asks for new comments every few seconds on its own: counted as activity,
    # a tab left open would never idle out, which is what the idle limit is for.
    return _signed_in(request, activity=False)


SignedIn = Annotated[Moderator, Depends(signed_in)]
SignedInPolling = Annotated[Moderator, Depends(signed_in_polling)]


def _admin(moderator: Moderator) -> Moderator:
    # The same sign-in as the queue: a moderator's session stays valid, the console is not
    # for it, and the page says so instead of sending it to sign in again.
    if moderator.caller.role not in Role.ADMINS:
        raise Forbidden(
            f"The admin console is for site admin and operator keys; this session's key is a "
            f"{moderator.caller.role} key. Nothing was shown or changed.",
            field="role",
        )
    return moderator


def signed_in_admin(moderator: SignedIn) -> Moderator:
    return _admin(moderator)


def signed_in_admin_polling(moderator: SignedInPolling) -> Moderator:
    # A training job's progress bar asks on its own, like the queue: not activity either.
    return _admin(moderator)


SignedInAdmin = Annotated[Moderator, Depends(signed_in_admin)]
SignedInAdminPolling = Annotated[Moderator, Depends(signed_in_admin_polling)]


async def read_form(request: Request) -> Form:
    # Only urlencoded bodies: the pages' forms and the page's script both send that, and a
    # parser for one format is less to get wrong than a multipart one.
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return Form({})
    body = (await request.body()).decode("utf-8", errors="replace")
    return Form(parse_qs(body, keep_blank_values=True, max_num_fields=1000))


def check_csrf(request: Request, form: Form, session: WebSession | None) -> None:
    given = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    if session is None or not tokens_match(session.csrf, given):
        raise CsrfRejected()


async def checked_form(request: Request, moderator: SignedIn) -> Form:
    form = await read_form(request)
    check_csrf(request, form, moderator.session)
    return form


CheckedForm = Annotated[Form, Depends(checked_form)]


def wants_json(request: Request) -> bool:
    """The page's script asks for JSON; a plain form post gets a redirect or a page."""
    return "application/json" in request.headers.get("accept", "")


def safe_next(target: str | None, default: str = "/moderate") -> str:
    """A return address on these pages only: never another host or scheme."""
    if not target or not target.startswith("/moderate") or "\\" in target:
        return default
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else default


def with_params(target: str, **params: str | int) -> str:
    parts = urlsplit(target)
    query = [
        (k, v) for k, v in parse_qs(parts.query, keep_blank_values=True).items() if k not in params
    ]
    flat = [(k, item) for k, values in query for item in values]
    flat += [(k, str(v)) for k, v in params.items()]
    return f"{parts.path}?{urlencode(flat)}"


def html_page(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    moderator: Moderator | None = None,
    **context: Any,
) -> HTMLResponse:
    context.setdefault("csrf", moderator.csrf if moderator else "")
    context.setdefault(
        "here", request.url.path + (f"?{request.url.query}" if request.url.query else "")
    )
    template_ = environment().get_template(template)
    html = template_.render(me=moderator.caller if moderator else None, **context)
    return HTMLResponse(html, status_code=status_code)


def _error_response(request: Request, status_code: int, code: str, detail: str) -> Response:
    if wants_json(request):
        return JSONResponse(
            {"error": code, "detail": detail, "field": None}, status_code=status_code
        )
    title = "Nothing was changed" if request.method == "POST" else "Not here"
    return html_page(
        request,
        "error.html",
        status_code=status_code,
        title=title,
        code=code,
        detail=detail,
        back="/moderate",
    )


def _to_sign_in(request: Request, exc: SignInRequired) -> Response:
    if wants_json(request):
        return JSONResponse(
            {"error": "unauthorized", "detail": "sign in again", "field": None}, status_code=401
        )
    params: dict[str, str] = {}
    if request.method == "GET":
        params["next"] = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if exc.ended:
        params["ended"] = "1"
    target = "/moderate/login" + (f"?{urlencode(params)}" if params else "")
    return RedirectResponse(target, status_code=303)


def _reissue_if_due(request: Request, response: Response) -> None:
    """Slide a signed-in session that was active, unless the response already sets the
    cookie (sign-in and sign-out issue sessions of their own)."""
    web: WebSession | None = getattr(request.state, "reissue_session", None)
    if web is None:
        return
    if any(v.startswith(f"{COOKIE_NAME}=") for v in response.headers.getlist("set-cookie")):
        return
    set_session_cookie(request, response, web)


class WebRoute(APIRoute):
    """Turns the pages' failures into pages: sign-in redirects, a 403 for a missing CSRF token,
    and domain errors rendered as HTML (or JSON for the page's script), plus security headers
    and the sliding re-issue of an active session's cookie."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                response = await handler(request)
            except SignInRequired as exc:
                response = _to_sign_in(request, exc)
            except CsrfRejected:
                log.warning("web_csrf_rejected", path=request.url.path)
                response = _error_response(
                    request,
                    403,
                    "csrf_failed",
                    "This form is out of date or did not come from these pages (its security "
                    "token is missing or wrong). Nothing was changed; reload and try again.",
                )
            except ModerationError as exc:
                response = _error_response(request, exc.status_code, exc.code, exc.detail)
            _reissue_if_due(request, response)
            for name, value in _SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            response.headers.setdefault("Cache-Control", "no-store")
            return response

        return guarded
