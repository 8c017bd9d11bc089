"""When beat retrains a site on its own: enough labels that no job has read, and not too soon
after a candidate that was not promoted.

Counting the labels the *active* model has not seen looped: a candidate that waits for an
operator (or was refused) is never activated, so the same labels stayed "new" and the schedule
started a job for the same site every few minutes, each using a core for minutes. Here a label
is new once no job that made a candidate has read it, whatever became of that candidate (a
job that failed made none, and its labels stay new). And when a site's
latest jobs all ended without a promotion (refused, waiting for an operator, failed), the next
one waits `backoff` after the last of them, doubled for each further one (at most a week): a
site whose labels keep failing the gate is not retrained on every few new labels.

An admin's own request (`start_retrain`) is not held back by either: it is a decision.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.core.db import session_scope
from service.core.errors import Conflict, Unavailable
from service.core.tables import Label, TrainingJob, utcnow
from service.models.labels import label_count
from service.models.training_jobs import (
    JobStatus,
    fail_stale_jobs,
    live_job,
    new_labels,
    request_retrain,
)

__all__ = ["MAX_BACKOFF", "SiteSchedule", "due_site", "retrain_if_due", "site_schedule"]

log = structlog.get_logger(__name__)

MAX_BACKOFF = timedelta(days=7)
# Enough to see a run of failures: the doubling is at its cap long before this many.
_HISTORY = 16


@dataclass(frozen=True)
class SiteSchedule:
    """What the schedule knows of one site."""

    unread_labels: int  # labels newer than any a job or the active model has read
    unpromoted_in_a_row: int  # the site's latest ended jobs that promoted nothing
    not_before: datetime | None  # when the backoff allows the next job, if it holds one back


def _latest_ended(session: Session, site_id: int) -> list[TrainingJob]:
    ended = (
        select(TrainingJob)
        .where(
            TrainingJob.site_id == site_id,
            TrainingJob.status.in_((JobStatus.SUCCEEDED, JobStatus.FAILED)),
        )
        .order_by(TrainingJob.finished_at.desc(), TrainingJob.created_at.desc())
        .limit(_HISTORY)
    )
    return list(session.scalars(ended))


def site_schedule(session: Session, site_id: int, *, backoff: timedelta) -> SiteSchedule:
    jobs = _latest_ended(session, site_id)
    _, active, model_read = new_labels(session, site_id)
    # A job that made a candidate has read its labels; one that failed (killed, out of
    # memory) has not, and its labels may start the next job once the backoff allows.
    made = [job.labels_until for job in jobs if job.status == JobStatus.SUCCEEDED]
    since = max((t for t in (model_read, *made) if t is not None), default=None)
    unpromoted = 0
    for job in jobs:
        # Promoted by itself, or later by an operator: either way the site's labels took.
        if job.promoted or (active is not None and job.candidate_version == active):
            break
        unpromoted += 1
    not_before = None
    if unpromoted and jobs[0].finished_at is not None:
        wait = min(backoff * 2 ** (unpromoted - 1), MAX_BACKOFF)
        not_before = jobs[0].finished_at + wait
    return SiteSchedule(label_count(session, site_id, since=since), unpromoted, not_before)


def due_site(
    session: Session,
    *,
    min_new_labels: int,
    backoff: timedelta,
    now: datetime | None = None,
) -> int | None:
    """The site with the most unread labels, if it has enough and no backoff holds it."""
    now = now or utcnow()
    due: dict[int, int] = {}
    for site_id in session.scalars(select(Label.site_id).distinct()):
        schedule = site_schedule(session, site_id, backoff=backoff)
        if schedule.unread_labels < min_new_labels:
            continue
        if schedule.not_before is not None and schedule.not_before > now:
            continue
        due[site_id] = schedule.unread_labels
    return max(due, key=lambda s: due[s], default=None)


def retrain_if_due(
    sessions: sessionmaker[Session],
    *,
    min_new_labels: int,
    backoff: timedelta,
    enqueue: Callable[[str], bool],
    stale_seconds: float,
    queued_seconds: float,
) -> str | None:
    """Beat's entry: sweep dead jobs; start one for the site most in need, if any is due."""
    with session_scope(sessions) as session:
        fail_stale_jobs(session, stale_seconds=stale_seconds, queued_seconds=queued_seconds)
        if min_new_labels <= 0 or live_job(session) is not None:
            return None
        site_id = due_site(session, min_new_labels=min_new_labels, backoff=backoff)
    if site_id is None:
        return None
    try:
        job = request_retrain(
            sessions,
            site_id,
            actor="schedule",
            enqueue=enqueue,
            stale_seconds=stale_seconds,
            queued_seconds=queued_seconds,
        )
    except (Conflict, Unavailable) as exc:  # a job started meanwhile, or Redis is away
        log.info("scheduled_retrain_skipped", reason=exc.detail)
        return None
    log.info("scheduled_retrain_started", job_id=job["id"], site=job["site"])
    return str(job["id"])
