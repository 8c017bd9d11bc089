"""Retraining jobs' lifecycle: start (one at a time), progress, heartbeat, sweep.

A job is `queued` → `running` → `succeeded` | `failed`. While queued or running it holds the
table's single `active_slot`, so a second job cannot exist even when two requests race; the
slot is freed (NULL) when the job ends. A running job's worker writes a heartbeat every few
seconds from a thread of its own; a job whose heartbeat is older than `stale_seconds` lost its
worker (killed, out of memory) and is failed by `fail_stale_jobs`, which beat runs and which
runs before every new job. Nothing is registered until a job's last transaction, so a failed
job leaves nothing behind. When beat starts a job on its own: service/models/schedule.py.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.core.db import rowcount, session_scope
from service.core.errors import (
    JobInProgress,
    JobNotFound,
    NoNewLabels,
    SiteNotFound,
    Unavailable,
)
from service.core.metrics import TRAINING_JOBS
from service.core.tables import ModelVersion, Site, TrainingJob, utcnow
from service.models.labels import label_count
from service.models.registry import active_version

__all__ = [
    "Heartbeat",
    "JobStatus",
    "claim_job",
    "fail_job",
    "fail_stale_jobs",
    "get_job",
    "list_jobs",
    "live_job",
    "new_labels",
    "report_progress",
    "request_retrain",
    "start_retrain",
]

log = structlog.get_logger(__name__)


class JobStatus:
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    LIVE = ("queued", "running")


def job_view(session: Session, job: TrainingJob) -> dict[str, Any]:
    site = session.get(Site, job.site_id) if job.site_id is not None else None
    return {
        "id": job.id,
        "site": site.name if site else None,
        "status": job.status,
        "stage": job.stage,
        "percent": round(job.percent, 1),
        "error": job.error,
        "requested_by": job.requested_by,
        "labels_used": job.labels_used,
        "candidate_version": job.candidate_version,
        "promoted": job.promoted,
        "result": job.result,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "heartbeat_at": job.heartbeat_at,
    }


def get_job(session: Session, job_id: str, *, site_id: int | None = None) -> dict[str, Any]:
    """One job; with `site_id`, only a job of that site (a moderator sees their own)."""
    job = session.get(TrainingJob, job_id)
    if job is None or (site_id is not None and job.site_id != site_id):
        raise JobNotFound(f"no training job {job_id!r}", field="job_id")
    return job_view(session, job)


def list_jobs(
    session: Session, *, site_id: int | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    query = select(TrainingJob).order_by(TrainingJob.created_at.desc()).limit(limit)
    if site_id is not None:
        query = query.where(TrainingJob.site_id == site_id)
    return [job_view(session, job) for job in session.scalars(query)]


def _trained_until(row: ModelVersion | None, site_id: int) -> tuple[bool, datetime | None]:
    """Whether the model was trained on this site's labels, and up to which label time."""
    if row is None:
        return False, None
    site = (row.data or {}).get("site") or {}
    if site.get("id") != site_id or not site.get("labels_until"):
        return False, None
    return True, datetime.fromisoformat(site["labels_until"])


def new_labels(session: Session, site_id: int) -> tuple[int, str | None, datetime | None]:
    """(labels of the site the active model was not trained on, active version, since when)."""
    active = active_version(session)
    row = session.get(ModelVersion, active) if active else None
    _, since = _trained_until(row, site_id)
    return label_count(session, site_id, since=since), active, since


def live_job(session: Session) -> TrainingJob | None:
    return session.scalar(select(TrainingJob).where(TrainingJob.active_slot.is_not(None)))


def _in_progress(job: TrainingJob) -> JobInProgress:
    return JobInProgress(
        f"training job {job.id} is already {job.status} ({job.stage}, {job.percent:.0f}%); "
        "one job runs at a time: wait for it, then retry",
        field="job_id",
    )


def start_retrain(session: Session, site_id: int, *, actor: str) -> TrainingJob:
    """Queue a job for the site; refused while another is queued or running, or when the site
    has no label the active model was not trained on."""
    live = live_job(session)
    if live is not None:
        raise _in_progress(live)
    site = session.get(Site, site_id)
    if site is None:
        raise SiteNotFound(f"no site with id {site_id}", field="site")
    count, active, since = new_labels(session, site_id)
    if count == 0:
        total = label_count(session, site_id)
        after = f"after {since.isoformat()} " if since else ""
        raise NoNewLabels(
            f"site {site.name!r} has no labels {after}that the active model {active} was not "
            f"trained on ({total} label{'s' if total != 1 else ''} in all); review held "
            "comments or import labels (`moderation labels import`) first",
            field="site",
        )
    job = TrainingJob(
        site_id=site_id,
        status=JobStatus.QUEUED,
        active_slot=1,
        stage="queued",
        percent=0.0,
        requested_by=actor,
        result={"new_labels": count},
        created_at=utcnow(),
    )
    session.add(job)
    try:
        session.flush()
    except IntegrityError as exc:  # another request took the slot between our read and write
        raise JobInProgress(
            "another training job was started at the same moment; one job runs at a time",
            field="job_id",
        ) from exc
    return job


def fail_job(session: Session, job_id: str, error: str) -> bool:
    """Mark a queued or running job failed and free the slot; False if it had already ended."""
    done = session.execute(
        update(TrainingJob)
        .where(TrainingJob.id == job_id, TrainingJob.status.in_(JobStatus.LIVE))
        .values(
            status=JobStatus.FAILED,
            active_slot=None,
            error=error[:4000],
            finished_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    return bool(rowcount(done))


def fail_stale_jobs(
    session: Session, *, stale_seconds: float, queued_seconds: float, now: datetime | None = None
) -> list[str]:
    """Fail running jobs whose worker stopped beating and queued jobs no worker picked up."""
    now = now or utcnow()
    failed = []
    running = select(TrainingJob).where(
        TrainingJob.status == JobStatus.RUNNING,
        TrainingJob.heartbeat_at < now - timedelta(seconds=stale_seconds),
    )
    for job in session.scalars(running).all():
        message = (
            f"the training worker stopped while {job.stage} (no heartbeat for over "
            f"{stale_seconds:g} s: killed or out of memory?); nothing was registered and the "
            "active model is unchanged"
        )
        if fail_job(session, job.id, message):
            failed.append(job.id)
    queued = select(TrainingJob).where(
        TrainingJob.status == JobStatus.QUEUED,
        TrainingJob.created_at < now - timedelta(seconds=queued_seconds),
    )
    for job in session.scalars(queued).all():
        message = (
            f"no training worker started the job within {queued_seconds:g} s; is one running "
            "(`moderation worker --queue training`)?"
        )
        if fail_job(session, job.id, message):
            failed.append(job.id)
    if failed:
        log.warning("training_jobs_failed_stale", jobs=failed)
        TRAINING_JOBS.labels(outcome="failed").inc(len(failed))
    return failed


def request_retrain(
    sessions: sessionmaker[Session],
    site_id: int,
    *,
    actor: str,
    enqueue: Callable[[str], bool],
    stale_seconds: float,
    queued_seconds: float,
) -> dict[str, Any]:
    """Sweep dead jobs, queue a new one, commit, then enqueue it; the API, CLI and beat path."""
    # Its own transaction: a refusal below must not undo the sweep.
    with session_scope(sessions) as session:
        fail_stale_jobs(session, stale_seconds=stale_seconds, queued_seconds=queued_seconds)
    with session_scope(sessions) as session:
        job_id = start_retrain(session, site_id, actor=actor).id
    if not enqueue(job_id):
        with session_scope(sessions) as session:
            fail_job(session, job_id, "the task queue (Redis) was unreachable; retry the request")
        raise Unavailable("the task queue is unreachable; the job was not started, retry shortly")
    with session_scope(sessions) as session:
        return get_job(session, job_id)


def claim_job(session: Session, job_id: str) -> bool:
    """queued → running, once: a message delivered twice (or after a sweep) runs nothing."""
    now = utcnow()
    done = session.execute(
        update(TrainingJob)
        .where(TrainingJob.id == job_id, TrainingJob.status == JobStatus.QUEUED)
        .values(
            status=JobStatus.RUNNING,
            stage="starting",
            percent=1.0,
            started_at=now,
            heartbeat_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(rowcount(done))


def report_progress(
    sessions: sessionmaker[Session], job_id: str, stage: str, percent: float
) -> None:
    with session_scope(sessions) as session:
        session.execute(
            update(TrainingJob)
            .where(TrainingJob.id == job_id, TrainingJob.status == JobStatus.RUNNING)
            .values(stage=stage[:100], percent=percent, heartbeat_at=utcnow())
            .execution_options(synchronize_session=False)
        )


class Heartbeat:
    """Writes a running job's heartbeat every `every` seconds from a thread, so that a long
    step with no progress to report (one regression on all the data) does not look dead."""

    def __init__(self, sessions: sessionmaker[Session], job_id: str, *, every: float) -> None:
        self.sessions, self.job_id, self.every = sessions, job_id, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="training-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            # A missed beat is fine: the next one counts, and stale means many missed.
            with contextlib.suppress(Exception), session_scope(self.sessions) as session:
                session.execute(
                    update(TrainingJob)
                    .where(TrainingJob.id == self.job_id, TrainingJob.status == JobStatus.RUNNING)
                    .values(heartbeat_at=utcnow())
                    .execution_options(synchronize_session=False)
                )
