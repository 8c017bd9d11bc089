"""The admin console's webhook and integrations: the site's webhook URL and signing secret,
Coral's signing secret and the log of deliveries, through the functions the API calls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session
from starlette.responses import Response

from service.core.broker import enqueue_webhooks
from service.core.errors import ModerationError
from service.core.settings import Settings
from service.http.state import state_of
from service.http.units import run_unit
from service.sites.coral import (
    coral_signing_secret_set,
    remove_coral_signing_secret,
    set_coral_signing_secret,
)
from service.web.console import saved_notice
from service.web.console_forms import (
    Refusal,
    confirm_first,
    console_page,
    refusal,
    short_text,
    shown_once,
)
from service.web.deps import CheckedForm, Form, Moderator, SignedInAdmin, WebRoute
from service.webhooks.config import get_webhook, remove_webhook, set_webhook
from service.webhooks.delivery import list_deliveries
from service.webhooks.redelivery import retry_delivery
from service.webhooks.rotation import rotate_webhook_secret

__all__ = ["router"]

router = APIRouter(prefix="/moderate/admin", route_class=WebRoute, include_in_schema=False)

WEBHOOK = "/moderate/admin/webhook"
DELIVERY_LIMIT = 25
_ANCHORS = {"url": "f-url", "signing_secret": "f-signing_secret", "delivery_id": "deliveries"}


def service_origins(request: Request, settings: Settings) -> list[tuple[str, int]]:
    """Where this service answers, as the API's webhook route counts it: the configured API
    address and the one the admin's browser used, so a URL back at us is refused here too."""
    url = request.base_url
    seen = [(url.hostname, url.port or (443 if url.scheme == "https" else 80))]
    return [(settings.api_host, settings.api_port), *((h, p) for h, p in seen if h)]


def _webhook_page(
    request: Request,
    me: Moderator,
    *,
    status_code: int = 200,
    errors: list[Refusal] | None = None,
    notice: str | None = None,
    posted: dict[str, str] | None = None,
) -> HTMLResponse:
    caller = me.caller

    def read(session: Session) -> dict[str, Any]:
        return {
            "webhook": get_webhook(session, caller.site_name),
            "coral_set": coral_signing_secret_set(session, caller.site_name),
            "deliveries": list_deliveries(session, caller.site_id, limit=DELIVERY_LIMIT),
        }

    return console_page(
        request,
        me,
        "admin_webhook.html",
        read,
        status_code=status_code,
        errors=errors or [],
        notice=notice,
        posted=posted or {},
        limit=DELIVERY_LIMIT,
    )


def _refused(
    request: Request, me: Moderator, exc: ModerationError, posted: dict[str, str] | None = None
) -> HTMLResponse:
    problem = refusal(exc, anchors=_ANCHORS, default="webhook")
    return _webhook_page(request, me, status_code=exc.status_code, errors=[problem], posted=posted)


def _done(done: str, section: str) -> RedirectResponse:
    return RedirectResponse(f"{WEBHOOK}?done={done}#{section}", status_code=303)


def _secret_page(request: Request, me: Moderator, secret: str, *, why: str) -> HTMLResponse:
    return shown_once(
        request,
        me,
        title=f"The webhook's signing secret of {me.caller.site_name}",
        secret=secret,
        about=(
            f"{why} Every delivery is signed with it (the X-Moderation-Signature header): "
            "give it to the receiver, which checks each delivery against it."
        ),
        back=WEBHOOK,
        back_label="Back to the webhook",
    )


@router.get("/webhook")
def webhook_page(request: Request, me: SignedInAdmin, done: str | None = None) -> HTMLResponse:
    """The webhook's URL and secret, Coral's signing secret and the latest deliveries."""
    return _webhook_page(request, me, notice=saved_notice(done))


@router.post("/webhook")
def save_webhook(request: Request, me: SignedInAdmin, form: CheckedForm) -> Response:
    """Set the URL, checked as the API checks it; a site's first URL gets a secret, shown once."""
    state, caller = state_of(request), me.caller
    posted = {"url": form.get("url") or ""}
    try:
        url = short_text(form, "url", what="the webhook URL", max_length=2000, required=True)
        origins = service_origins(request, state.settings)
        config = run_unit(
            state.sessions,
            lambda session: set_webhook(
                session,
                caller.site_name,
                url=url,
                secret=None,
                actor=caller.actor,
                service_origins=origins,
                api_port=state.settings.api_port,
                allowed_networks=state.settings.webhook_allowed_networks,
            ),
        )
    except ModerationError as exc:
        return _refused(request, me, exc, posted)
    if config.secret is not None:
        return _secret_page(request, me, config.secret, why="The URL is saved, with a new secret.")
    return _done("saved", "webhook")


def _confirmed(
    request: Request, me: Moderator, form: Form, *, title: str, question: str, button: str
) -> HTMLResponse | None:
    return confirm_first(
        request, me, form, title=title, question=question, button=button, back=WEBHOOK
    )


@router.post("/webhook/secret")
def rotate_secret(request: Request, me: SignedInAdmin, form: CheckedForm) -> Response:
    """A new signing secret, shown once, after a confirmation page."""
    state, caller = state_of(request), me.caller
    confirm = _confirmed(
        request,
        me,
        form,
        title="Rotate the webhook's signing secret?",
        question=(
            "Deliveries are signed with the new secret from now on: the receiver refuses them "
            "until it has the new secret too."
        ),
        button="Make a new secret",
    )
    if confirm is not None:
        return confirm
    try:
        config = run_unit(
            state.sessions,
            lambda session: rotate_webhook_secret(
                session,
                caller.site_name,
                actor=caller.actor,
                service_origins=service_origins(request, state.settings),
                api_port=state.settings.api_port,
                allowed_networks=state.settings.webhook_allowed_networks,
            ),
        )
    except ModerationError as exc:
        return _refused(request, me, exc)
    assert config.secret is not None
    return _secret_page(request, me, config.secret, why="The old secret signs nothing any more.")


def _removal(
    request: Request,
    me: Moderator,
    form: Form,
    remove: Callable[..., None],
    *,
    what: str,
    question: str,
    section: str,
) -> Response:
    """Confirm, then `remove(session, site, actor=...)`: the webhook's and Coral's removals."""
    confirm = _confirmed(
        request, me, form, title=f"Remove {what}?", question=question, button=f"Remove {what}"
    )
    if confirm is not None:
        return confirm
    caller = me.caller
    try:
        run_unit(
            state_of(request).sessions,
            lambda session: remove(session, caller.site_name, actor=caller.actor),
        )
    except ModerationError as exc:
        return _refused(request, me, exc)
    return _done("removed", section)


@router.post("/webhook/remove")
def delete_webhook(request: Request, me: SignedInAdmin, form: CheckedForm) -> Response:
    """Stop sending the site's events, after a confirmation page."""
    return _removal(
        request,
        me,
        form,
        remove_webhook,
        what="the webhook",
        question=(
            "No event is sent any more, and deliveries still waiting fail at their next "
            "attempt. The URL and the secret are forgotten."
        ),
        section="webhook",
    )


@router.post("/webhook/coral")
def save_coral_secret(request: Request, me: SignedInAdmin, form: CheckedForm) -> Response:
    """Store the secret Coral signs the site's external moderation calls with."""
    caller = me.caller
    # Not stripped: the function refuses a secret with spaces around it, and says so.
    secret = form.get("signing_secret") or ""
    try:
        run_unit(
            state_of(request).sessions,
            lambda session: set_coral_signing_secret(
                session, caller.site_name, secret=secret, actor=caller.actor
            ),
        )
    except ModerationError as exc:
        return _refused(request, me, exc)
    return _done("saved", "coral")


@router.post("/webhook/coral/remove")
def delete_coral_secret(request: Request, me: SignedInAdmin, form: CheckedForm) -> Response:
    """Forget Coral's signing secret, after a confirmation page."""
    return _removal(
        request,
        me,
        form,
        remove_coral_signing_secret,
        what="Coral's signing secret",
        question="Every external moderation call from Coral is refused until a secret is set.",
        section="coral",
    )


@router.post("/webhook/deliveries/{delivery_id}/retry")
def retry(request: Request, delivery_id: str, me: SignedInAdmin, form: CheckedForm) -> Response:
    """Send a failed delivery again, now, under the same delivery id."""
    state, caller = state_of(request), me.caller
    try:
        run_unit(
            state.sessions,
            lambda session: retry_delivery(
                session, caller.site_id, delivery_id, actor=caller.actor
            ),
            # Beat's retry_webhooks sends it later if the broker is away now.
            after_commit=lambda sent: enqueue_webhooks(state.enqueue.app, [sent]),
        )
    except ModerationError as exc:
        return _refused(request, me, exc)
    return _done("retried", "deliveries")
