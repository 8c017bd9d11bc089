"""Training-queue tasks: a retraining job, beat's check for a due one, the retention purge."""

from __future__ import annotations

from datetime import timedelta

from service.core.broker import PURGE_EXPIRED, RETRAIN, RETRAIN_IF_DUE, enqueue_retrain
from service.core.db import session_scope
from service.models.schedule import retrain_if_due as start_if_due
from service.moderation.erasure import CHUNK, purge_expired
from workers.app import app, resources

__all__ = ["purge", "retrain", "retrain_if_due"]


# Late acknowledgement, so a message a worker took but never started is run by the next one;
# but never re-run blindly after the worker died mid-job: the job is claimed once (queued →
# running), so a redelivered message finds it running or failed and does nothing, and the
# sweep fails it when its heartbeat stops.
@app.task(name=RETRAIN, acks_late=True, reject_on_worker_lost=False, ignore_result=True)
def retrain(job_id: str) -> None:
    # Imported here: training brings scikit-learn (about 80 MB), which every other worker
    # that loads this module (all do, to know the task) never needs.
    from service.models.retrain import RetrainConfig, run_job

    res = resources()
    run_job(
        res.sessions,
        job_id,
        config=RetrainConfig.from_settings(res.settings),
        work_dir=res.settings.var_dir / "training",
        cache_dir=res.settings.var_dir / "models",
    )


@app.task(name=RETRAIN_IF_DUE, acks_late=True, ignore_result=True)
def retrain_if_due() -> str | None:
    res = resources()
    settings = res.settings
    return start_if_due(
        res.sessions,
        min_new_labels=settings.retrain_min_new_labels,
        backoff=timedelta(seconds=settings.retrain_backoff_seconds),
        enqueue=lambda job_id: enqueue_retrain(app, job_id),
        stale_seconds=settings.retrain_stale_seconds,
        queued_seconds=settings.retrain_queued_seconds,
    )


@app.task(name=PURGE_EXPIRED, acks_late=True, ignore_result=True)
def purge() -> int:
    """Erase what is past its site's retention, a chunk a transaction, until none is left."""
    res, total = resources(), 0
    while True:
        with session_scope(res.sessions) as session:
            done = purge_expired(session)
        total += done
        if done < CHUNK:
            return total
