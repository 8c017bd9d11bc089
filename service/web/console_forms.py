"""What the console's pages of keys, webhook and models share: reading a field, a refusal
shown beside its control, a confirmation step, and a page that shows a secret once."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from service.core.errors import InvalidInput, ModerationError
from service.http.state import state_of
from service.http.units import run_unit
from service.web.deps import Form, Moderator, html_page

__all__ = [
    "Refusal",
    "confirm_first",
    "console_page",
    "refusal",
    "short_text",
    "shown_once",
    "whole_number",
]

CONFIRMED = "confirmed"


@dataclass(frozen=True)
class Refusal:
    """A refusal as the error summary lists it (_policy.html's `error_summary`): the field the
    function named, its message, and the id of the control (or form) the link leads to."""

    field: str
    message: str
    anchor: str


def refusal(exc: ModerationError, *, anchors: Mapping[str, str], default: str) -> Refusal:
    # The domain names fields the way the API's bodies do ("url", "role", "prefix"); a page
    # links the ones it has a control for, and the form itself for the rest.
    field = exc.field or ""
    return Refusal(field or "form", exc.detail, anchors.get(field, default))


def whole_number(form: Form, name: str, *, default: int, low: int, high: int) -> int:
    """The field as a whole number within [low, high]; blank is the default."""
    text = (form.get(name) or "").strip()
    if not text:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise InvalidInput(
            f"{name.replace('_', ' ')} must be a whole number from {low:,} to {high:,}",
            field=name,
        )
    return int(text)


def short_text(form: Form, name: str, *, what: str, max_length: int, required: bool) -> str:
    """The field stripped, within the length the API's body allows for the same value."""
    text = (form.get(name) or "").strip()
    if required and not text:
        raise InvalidInput(f"give {what}", field=name)
    if len(text) > max_length:
        raise InvalidInput(f"{what} must be at most {max_length} characters", field=name)
    return text


def console_page(
    request: Request,
    me: Moderator,
    template: str,
    read: Callable[[Session], dict[str, Any]],
    *,
    status_code: int = 200,
    errors: Sequence[Refusal] = (),
    notice: str | None = None,
    **extra: Any,
) -> HTMLResponse:
    """A console page from what `read` finds in one unit of work, with any refusal listed on
    top (the page's script moves the focus there)."""
    context = run_unit(state_of(request).sessions, read)
    return html_page(
        request,
        template,
        status_code=status_code,
        moderator=me,
        errors=list(errors),
        notice=notice,
        **context,
        **extra,
    )


def confirm_first(
    request: Request,
    me: Moderator,
    form: Form,
    *,
    title: str,
    question: str,
    button: str,
    back: str,
) -> HTMLResponse | None:
    """The confirmation page of a post that cannot be undone, unless this post confirms it
    (None: go ahead). The page posts the same fields again, so no other route is needed and
    the step works without the script."""
    if form.get(CONFIRMED) == "yes":
        return None
    fields = [(k, v) for k, values in form.fields.items() if k != "csrf_token" for v in values]
    return html_page(
        request,
        "admin_confirm.html",
        moderator=me,
        title=title,
        question=question,
        button=button,
        back=back,
        action_url=request.url.path,
        fields=fields,
    )


def shown_once(
    request: Request,
    me: Moderator,
    *,
    title: str,
    secret: str,
    about: str,
    back: str,
    back_label: str,
) -> HTMLResponse:
    """A page that shows a key or secret this one time: no cache or browser may keep it."""
    response = html_page(
        request,
        "admin_secret.html",
        moderator=me,
        title=title,
        secret=secret,
        about=about,
        back=back,
        back_label=back_label,
    )
    response.headers["Cache-Control"] = "no-store"
    return response
