"""The admin console's models: the registry with each version's figures and the shadow's report,
retraining on the site's labels with a live progress bar, and (operator keys) promotion and
rollback, through the functions the API's model routes call."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from sqlalchemy.orm import Session
from starlette.responses import Response

from service.core.broker import enqueue_retrain
from service.core.errors import Forbidden, ModerationError
from service.core.tables import Role
from service.http.state import state_of
from service.http.units import run_unit
from service.models.promotion import promote_checked
from service.models.registry import model_events, rollback, shadow_version
from service.models.shadow import shadow_report
from service.models.training_jobs import JobStatus, get_job, list_jobs, new_labels, request_retrain
from service.models.versions import list_versions
from service.web.console import saved_notice
from service.web.console_forms import Refusal, console_page, refusal, short_text
from service.web.deps import (
    CheckedForm,
    Form,
    Moderator,
    SignedInAdmin,
    SignedInAdminPolling,
    WebRoute,
)

__all__ = ["router"]

router = APIRouter(prefix="/moderate/admin", route_class=WebRoute, include_in_schema=False)

MODELS = "/moderate/admin/models"
JOB_LIMIT = 10
EVENT_LIMIT = 15


def _site_scope(me: Moderator) -> int | None:
    # As the API's model routes: a key of one site sees its own site's jobs and shadow
    # figures, an operator key every site's.
    return None if me.caller.role == Role.OPERATOR else me.caller.site_id


def _models_context(session: Session, me: Moderator) -> dict[str, Any]:
    caller, scope = me.caller, _site_scope(me)
    site_name = None if scope is None else caller.site_name
    shadow = shadow_version(session)
    count, _, since = new_labels(session, caller.site_id)
    jobs = list_jobs(session, site_id=scope, limit=JOB_LIMIT)
    return {
        **list_versions(session, site_name=site_name),
        "shadow": shadow_report(session, shadow, site_id=scope) if shadow else None,
        "new_labels": count,
        "labels_since": since,
        "jobs": jobs,
        "live": next((job for job in jobs if job["status"] in JobStatus.LIVE), None),
        "events": model_events(session, limit=EVENT_LIMIT, site_name=site_name),
        "operator": scope is None,
    }


def _models_page(
    request: Request,
    me: Moderator,
    *,
    status_code: int = 200,
    errors: list[Refusal] | None = None,
    notice: str | None = None,
) -> HTMLResponse:
    return console_page(
        request,
        me,
        "admin_models.html",
        lambda session: _models_context(session, me),
        status_code=status_code,
        errors=errors or [],
        notice=notice,
    )


def _refused(request: Request, me: Moderator, exc: ModerationError, anchor: str) -> HTMLResponse:
    problem = refusal(exc, anchors={"reason": anchor}, default=anchor)
    return _models_page(request, me, status_code=exc.status_code, errors=[problem])


def _reason(me: Moderator, form: Form) -> str:
    """The reason an alias move is recorded with; the registry serves every site, so moving
    it takes an operator key, as in the API."""
    if me.caller.role != Role.OPERATOR:
        raise Forbidden(
            "promotion and rollback change the model of every site of the deployment: they "
            f"take an operator key, and this session's key is a {me.caller.role} key",
            field="role",
        )
    return short_text(form, "reason", what="a reason", max_length=1000, required=True)


@router.get("/models")
def models_page(request: Request, me: SignedInAdmin, done: str | None = None) -> HTMLResponse:
    """The versions with their figures, the shadow's report, the site's retraining jobs."""
    return _models_page(request, me, notice=saved_notice(done))


@router.get("/models/jobs/{job_id}")
def job_status(request: Request, job_id: str, me: SignedInAdminPolling) -> JSONResponse:
    """A job as the API's GET /v1/models/jobs/{id} shows it, for the page's progress bar (the
    page has a session cookie, not the bearer key the API asks for)."""
    job = run_unit(
        state_of(request).sessions,
        lambda session: get_job(session, job_id, site_id=_site_scope(me)),
    )
    return JSONResponse(jsonable_encoder(job))


@router.post("/models/retrain")
def start_retraining(request: Request, me: SignedInAdmin, form: CheckedForm) -> Response:
    """Queue a retraining job on the site's labels; refused while one runs or with no new label."""
    state, caller = state_of(request), me.caller
    app, settings = state.enqueue.app, state.settings
    try:
        # Its own transactions, as in the API: committed, enqueued, failed again if the
        # broker is away.
        request_retrain(
            state.sessions,
            caller.site_id,
            actor=caller.actor,
            enqueue=lambda job_id: enqueue_retrain(app, job_id),
            stale_seconds=settings.retrain_stale_seconds,
            queued_seconds=settings.retrain_queued_seconds,
        )
    except ModerationError as exc:
        return _refused(request, me, exc, "retrain")
    return RedirectResponse(f"{MODELS}?done=started#jobs", status_code=303)


@router.post("/models/rollback")
def roll_back(request: Request, me: SignedInAdmin, form: CheckedForm) -> Response:
    """Point the active alias back where its last move came from (operator keys)."""
    try:
        reason = _reason(me, form)
        run_unit(
            state_of(request).sessions,
            lambda session: rollback(session, actor=me.caller.actor, reason=reason),
        )
    except ModerationError as exc:
        return _refused(request, me, exc, "rollback-reason")
    return RedirectResponse(f"{MODELS}?done=rolled_back", status_code=303)


@router.post("/models/{version}/promote")
def promote_version(
    request: Request, version: str, me: SignedInAdmin, form: CheckedForm
) -> Response:
    """Make a version the active model, its stored artifact checked first (operator keys)."""
    try:
        reason = _reason(me, form)
        run_unit(
            state_of(request).sessions,
            lambda session: promote_checked(session, version, actor=me.caller.actor, reason=reason),
        )
    except ModerationError as exc:
        return _refused(request, me, exc, f"reason-{version}")
    return RedirectResponse(f"{MODELS}?done=promoted", status_code=303)
