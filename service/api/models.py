"""Routes of the model registry and retraining: versions, promotion, rollback, jobs.

Reading (versions, events, jobs) takes a moderator, site admin or operator key: moderators may
want to know which model decides and why it changed, but a key of one site sees only its own
site's part of the training metadata and jobs. The registry serves every site, so changing
what decides (promote, rollback, retire, shadow) takes an operator key; a site admin may
retrain on its own site's labels, which registers a candidate for an operator to promote.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sqlalchemy.orm import Session, defer

from service.api.schemas import ReasonIn, RetireIn, RetrainIn, ShadowIn
from service.core.broker import enqueue_retrain
from service.core.errors import ModelNotFound
from service.core.tables import ModelVersion, Role
from service.http.deps import (
    AdminKey,
    Caller,
    ModeratorKey,
    OperatorKey,
    State,
    require_site,
)
from service.http.units import in_session
from service.models.promotion import promote_checked
from service.models.registry import (
    active_version,
    model_events,
    retire,
    rollback,
    set_shadow,
    version_view,
    version_view_for_site,
)
from service.models.training_jobs import get_job, list_jobs, request_retrain
from service.sites.sites import get_site

__all__ = ["router"]

router = APIRouter(prefix="/v1/models", tags=["models"])

VersionPath = Annotated[str, Path(min_length=1, max_length=100)]
# Listings never read the artifacts (megabytes each).
_WITHOUT_ARCHIVE = select(ModelVersion).options(defer(ModelVersion.archive))


def _view(caller: Caller, row: ModelVersion, active: str | None) -> dict[str, Any]:
    if caller.role == Role.OPERATOR:
        return version_view(row, active=active)
    return version_view_for_site(row, active=active, site_name=caller.site_name)


@router.get("", summary="Every model version, newest first, with the active one marked")
async def get_models(caller: ModeratorKey, state: State) -> dict[str, Any]:
    def read(session: Session) -> dict[str, Any]:
        active = active_version(session)
        rows = session.scalars(_WITHOUT_ARCHIVE.order_by(ModelVersion.created_at.desc()))
        return {"active": active, "versions": [_view(caller, r, active) for r in rows]}

    return await in_session(state, read)


@router.get("/events", summary="Every move of the active alias (and registrations), newest first")
async def get_events(caller: ModeratorKey, state: State) -> dict[str, Any]:
    site_name = None if caller.role == Role.OPERATOR else caller.site_name

    def read(session: Session) -> list[dict[str, Any]]:
        return model_events(session, limit=500, site_name=site_name)

    return {"events": await in_session(state, read)}


@router.get("/jobs", summary="Recent retraining jobs, newest first")
async def get_jobs(caller: ModeratorKey, state: State) -> dict[str, Any]:
    site_id = None if caller.role == Role.OPERATOR else caller.site_id

    return {"jobs": await in_session(state, lambda session: list_jobs(session, site_id=site_id))}


@router.get("/jobs/{job_id}", summary="One retraining job: status, stage, percent, error")
async def get_one_job(
    job_id: Annotated[str, Path(max_length=32)], caller: ModeratorKey, state: State
) -> dict[str, Any]:
    site_id = None if caller.role == Role.OPERATOR else caller.site_id

    return await in_session(state, lambda session: get_job(session, job_id, site_id=site_id))


@router.post(
    "/retrain",
    status_code=202,
    summary="Queue a retraining job on the site's labels (default: the key's site)",
)
async def post_retrain(
    caller: AdminKey, state: State, response: Response, payload: RetrainIn | None = None
) -> dict[str, Any]:
    settings = state.settings
    app = state.enqueue.app

    site_name = payload.site if payload and payload.site else caller.site_name
    require_site(caller, site_name)
    site_id = await in_session(state, lambda session: get_site(session, site_name).id)
    # Not one unit of work: the job is committed, enqueued, and failed again if the broker is
    # away, each step in its own transaction (see request_retrain).
    job = await run_in_threadpool(
        lambda: request_retrain(
            state.sessions,
            site_id,
            actor=caller.actor,
            enqueue=lambda job_id: enqueue_retrain(app, job_id),
            stale_seconds=settings.retrain_stale_seconds,
            queued_seconds=settings.retrain_queued_seconds,
        )
    )
    response.headers["Location"] = f"/v1/models/jobs/{job['id']}"
    return job


@router.post("/rollback", summary="Point the active alias back where its last move came from")
async def post_rollback(payload: ReasonIn, caller: OperatorKey, state: State) -> dict[str, Any]:
    return await in_session(
        state, lambda session: rollback(session, actor=caller.actor, reason=payload.reason)
    )


@router.put("/shadow", summary="Score live comments with a version in shadow (null: stop)")
async def put_shadow(payload: ShadowIn, caller: OperatorKey, state: State) -> dict[str, Any]:
    shadow = await in_session(
        state, lambda session: set_shadow(session, payload.version, actor=caller.actor)
    )
    return {"shadow": shadow}


@router.get("/{version}", summary="One model version: metrics, bias table, data, parameters")
async def get_model(version: VersionPath, caller: ModeratorKey, state: State) -> dict[str, Any]:
    def read(session: Session) -> dict[str, Any]:
        row = session.scalar(_WITHOUT_ARCHIVE.where(ModelVersion.version == version))
        if row is None:
            raise ModelNotFound(f"no model version {version!r}", field="version")
        return _view(caller, row, active_version(session))

    return await in_session(state, read)


@router.post("/{version}/promote", summary="Make a version the active model")
async def post_promote(
    version: VersionPath, payload: ReasonIn, caller: OperatorKey, state: State
) -> dict[str, Any]:
    def write(session: Session) -> dict[str, Any]:
        return promote_checked(session, version, actor=caller.actor, reason=payload.reason)

    return await in_session(state, write)


@router.post("/{version}/retire", summary="Take a version out of use for good")
async def post_retire(
    version: VersionPath, caller: OperatorKey, state: State, payload: RetireIn | None = None
) -> dict[str, Any]:
    reason = payload.reason if payload else ""
    return await in_session(
        state, lambda session: retire(session, version, actor=caller.actor, reason=reason)
    )
