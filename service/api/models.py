"""Routes of the model registry and retraining: versions, promotion, rollback, jobs.

Reading (versions, events, jobs) takes a moderator or admin key: moderators may want to know
which model decides and why it changed. Changing anything (retrain, promote, rollback, retire,
shadow) takes an admin key. The registry serves every site; a moderator sees only its own
site's training jobs.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import defer

from service.core.broker import enqueue_retrain
from service.core.db import session_scope
from service.core.tables import ModelVersion, Role
from service.http.deps import AdminKey, ModeratorKey, State
from service.models.promotion import promote_checked
from service.models.registry import (
    ModelNotFound,
    active_version,
    model_events,
    retire,
    rollback,
    set_shadow,
    version_view,
)
from service.models.training_jobs import get_job, list_jobs, request_retrain
from service.sites.sites import get_site

__all__ = ["router"]

router = APIRouter(prefix="/v1/models", tags=["models"])

VersionPath = Annotated[str, Path(min_length=1, max_length=100)]
# Listings never read the artifacts (megabytes each).
_WITHOUT_ARCHIVE = select(ModelVersion).options(defer(ModelVersion.archive))


class ReasonIn(BaseModel):
    """Why: kept with the alias move in the model events."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=1000)


class RetireIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=1000)


class RetrainIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site: str | None = Field(
        default=None, min_length=1, max_length=100, description="Default: the key's site."
    )


class ShadowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str | None = Field(
        min_length=1, max_length=100, description="The version to shadow; null stops shadowing."
    )


@router.get("", summary="Every model version, newest first, with the active one marked")
async def get_models(caller: ModeratorKey, state: State) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        with session_scope(state.sessions) as session:
            active = active_version(session)
            rows = session.scalars(_WITHOUT_ARCHIVE.order_by(ModelVersion.created_at.desc()))
            return {"active": active, "versions": [version_view(r, active=active) for r in rows]}

    return await run_in_threadpool(read)


@router.get("/events", summary="Every move of the active alias (and registrations), newest first")
async def get_events(caller: ModeratorKey, state: State) -> dict[str, Any]:
    def read() -> list[dict[str, Any]]:
        with session_scope(state.sessions) as session:
            return model_events(session, limit=500)

    return {"events": await run_in_threadpool(read)}


@router.get("/jobs", summary="Recent retraining jobs, newest first")
async def get_jobs(caller: ModeratorKey, state: State) -> dict[str, Any]:
    site_id = None if caller.role == Role.ADMIN else caller.site_id

    def read() -> list[dict[str, Any]]:
        with session_scope(state.sessions) as session:
            return list_jobs(session, site_id=site_id)

    return {"jobs": await run_in_threadpool(read)}


@router.get("/jobs/{job_id}", summary="One retraining job: status, stage, percent, error")
async def get_one_job(
    job_id: Annotated[str, Path(max_length=32)], caller: ModeratorKey, state: State
) -> dict[str, Any]:
    site_id = None if caller.role == Role.ADMIN else caller.site_id

    def read() -> dict[str, Any]:
        with session_scope(state.sessions) as session:
            return get_job(session, job_id, site_id=site_id)

    return await run_in_threadpool(read)


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

    def write() -> dict[str, Any]:
        site_name = payload.site if payload and payload.site else caller.site_name
        with session_scope(state.sessions) as session:
            site_id = get_site(session, site_name).id
        return request_retrain(
            state.sessions,
            site_id,
            actor=caller.actor,
            enqueue=lambda job_id: enqueue_retrain(app, job_id),
            stale_seconds=settings.retrain_stale_seconds,
            queued_seconds=settings.retrain_queued_seconds,
        )

    job = await run_in_threadpool(write)
    response.headers["Location"] = f"/v1/models/jobs/{job['id']}"
    return job


@router.post("/rollback", summary="Point the active alias back where its last move came from")
async def post_rollback(payload: ReasonIn, caller: AdminKey, state: State) -> dict[str, Any]:
    def write() -> dict[str, Any]:
        with session_scope(state.sessions) as session:
            return rollback(session, actor=caller.actor, reason=payload.reason)

    return await run_in_threadpool(write)


@router.put("/shadow", summary="Score live comments with a version in shadow (null: stop)")
async def put_shadow(payload: ShadowIn, caller: AdminKey, state: State) -> dict[str, Any]:
    def write() -> dict[str, Any]:
        with session_scope(state.sessions) as session:
            return {"shadow": set_shadow(session, payload.version, actor=caller.actor)}

    return await run_in_threadpool(write)


@router.get("/{version}", summary="One model version: metrics, bias table, data, parameters")
async def get_model(version: VersionPath, caller: ModeratorKey, state: State) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        with session_scope(state.sessions) as session:
            row = session.scalar(_WITHOUT_ARCHIVE.where(ModelVersion.version == version))
            if row is None:
                raise ModelNotFound(f"no model version {version!r}", field="version")
            return version_view(row, active=active_version(session))

    return await run_in_threadpool(read)


@router.post("/{version}/promote", summary="Make a version the active model")
async def post_promote(
    version: VersionPath, payload: ReasonIn, caller: AdminKey, state: State
) -> dict[str, Any]:
    def write() -> dict[str, Any]:
        with session_scope(state.sessions) as session:
            return promote_checked(session, version, actor=caller.actor, reason=payload.reason)

    return await run_in_threadpool(write)


@router.post("/{version}/retire", summary="Take a version out of use for good")
async def post_retire(
    version: VersionPath, caller: AdminKey, state: State, payload: RetireIn | None = None
) -> dict[str, Any]:
    def write() -> dict[str, Any]:
        with session_scope(state.sessions) as session:
            reason = payload.reason if payload else ""
            return retire(session, version, actor=caller.actor, reason=reason)

    return await run_in_threadpool(write)
