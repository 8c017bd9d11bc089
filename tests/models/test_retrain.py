"""Retraining jobs as plain functions on SQLite and PostgreSQL, on a tiny synthetic base corpus."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from classifier import ATTRIBUTES, save_model
from classifier.artifact import artifact_identity
from classifier.training import Source, train
from service.core.db import session_scope
from service.core.errors import JobInProgress, NoNewLabels, Unavailable
from service.core.tables import Label, ModelEvent, ModelVersion, Site, TrainingJob, utcnow
from service.models.labels import site_labels
from service.models.registry import active_version, ensure_registered
from service.models.retrain import SITE_FILE, RetrainConfig, run_job, split_by_time
from service.models.schedule import MAX_BACKOFF, retrain_if_due, site_schedule
from service.models.training_jobs import (
    fail_stale_jobs,
    get_job,
    request_retrain,
    start_retrain,
)
from tests.factories import site_texts, write_base_corpus

MIX = {"jigsaw_train": Source(ATTRIBUTES, 1.0)}


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_base_corpus(tmp_path_factory.mktemp("base"))


@pytest.fixture(scope="module")
def first_model(base_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The deployment's first model: the same recipe on the base data alone."""
    model, _ = train(base_dir, mix=MIX)
    return save_model(model, tmp_path_factory.mktemp("first"))


def config(base_dir: Path, **overrides: Any) -> RetrainConfig:
    values: dict[str, Any] = {
        "data_dir": base_dir,
        "mix": MIX,
        "heartbeat_seconds": 0.2,
        "min_class_rows": 5,
    }
    return RetrainConfig(**(values | overrides))


def add_labels(sessions: sessionmaker[Session], site_id: int, n: int, *, start: int = 0) -> None:
    now = utcnow()
    with session_scope(sessions) as session:
        for i, (text, values) in enumerate(site_texts(start + n)[start:]):
            at = now - timedelta(seconds=1000 - start - i)
            session.add(
                Label(
                    site_id=site_id,
                    source="import",
                    text=text,
                    labels=values,
                    actor="test",
                    created_at=at,
                    updated_at=at,
                )
            )


@pytest.fixture
def site_id(sessions: sessionmaker[Session], first_model: Path) -> int:
    with session_scope(sessions) as session:
        ensure_registered(session, first_model)
        site = Site(name="news", policy={})
        session.add(site)
        session.flush()
        return site.id


def _run(sessions: sessionmaker[Session], job_id: str, cfg: RetrainConfig, tmp: Path) -> Any:
    return run_job(sessions, job_id, config=cfg, work_dir=tmp / "work", cache_dir=tmp / "cache")


def _versions(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(ModelVersion)) or 0


def test_a_retrain_holds_out_the_newest_labels_registers_a_candidate_and_promotes_it(
    sessions: sessionmaker[Session], site_id: int, base_dir: Path, first_model: Path, tmp_path: Path
) -> None:
    add_labels(sessions, site_id, 60)
    with session_scope(sessions) as session:
        job_id = start_retrain(session, site_id, actor="alice").id
    promoted = REGISTRY.get_sample_value("moderation_training_jobs_total", {"outcome": "promoted"})
    result = _run(sessions, job_id, config(base_dir), tmp_path)
    assert result is not None and result["promoted"], result
    assert (
        REGISTRY.get_sample_value("moderation_training_jobs_total", {"outcome": "promoted"})
        == (promoted or 0) + 1
    )
    first = artifact_identity(first_model)[0]
    with session_scope(sessions) as session:
        job = get_job(session, job_id)
        candidate = session.get_one(ModelVersion, job["candidate_version"])
        event = session.scalars(select(ModelEvent).order_by(ModelEvent.id.desc())).first()
        assert active_version(session) == candidate.version
        slot = session.scalar(select(TrainingJob.active_slot).where(TrainingJob.id == job_id))
    assert (job["status"], job["percent"], job["promoted"], slot) == ("succeeded", 100, True, None)
    assert job["labels_used"] == 48
    assert candidate.parent == first
    assert candidate.data["site"] | {"labels_until": None, "holdout_from": None} == {
        "id": site_id,
        "name": "news",
        "labels_until": None,
        "holdout_from": None,
        "trained_rows": 48,
        "holdout_rows": 12,
        "weight": 5.0,
        "sampling": {"other": {"labels": 60, "weight": 1.0}},  # imported, of no comment
    }
    assert candidate.params["mix"][SITE_FILE]["weight"] == 5.0
    evaluations = candidate.metrics["evaluations"]
    assert set(evaluations) == {"base_test", "site_holdout"}
    assert evaluations["site_holdout"]["rows"] == 12
    holdout = {m["attribute"]: m for m in evaluations["site_holdout"]["candidate"]}
    was = {m["attribute"]: m for m in evaluations["site_holdout"]["active"]}
    assert holdout["toxic"]["roc_auc"] > was["toxic"]["roc_auc"], "the site's words were learnt"
    assert candidate.bias["summary"]["identities_over_limit"] == 0
    assert candidate.bias["active"]["version"] == first
    assert event is not None and (event.action, event.actor) == (
        "auto_promote",
        f"retrain job {job_id}",
    )
    assert "site_holdout toxic ROC-AUC" in event.reason and "margin" in event.reason


def test_a_candidate_the_holdout_cannot_vouch_for_waits_for_an_admin(
    sessions: sessionmaker[Session], site_id: int, base_dir: Path, first_model: Path, tmp_path: Path
) -> None:
    add_labels(sessions, site_id, 20)  # a holdout of 4: too few to measure anything
    with session_scope(sessions) as session:
        job_id = start_retrain(session, site_id, actor="alice").id
    result = _run(sessions, job_id, config(base_dir, min_class_rows=10), tmp_path)
    assert result is not None and not result["promoted"]
    assert any("site_holdout" in reason for reason in result["reasons"]), result["reasons"]
    with session_scope(sessions) as session:
        job = get_job(session, job_id)
        assert active_version(session) == artifact_identity(first_model)[0]
        status = session.get_one(ModelVersion, job["candidate_version"]).status
    assert (job["status"], job["stage"], status) == (
        "succeeded",
        "done: waiting for an operator",
        "candidate",
    )


def test_a_candidate_trained_on_one_of_several_sites_labels_waits_for_an_operator(
    sessions: sessionmaker[Session], site_id: int, base_dir: Path, first_model: Path, tmp_path: Path
) -> None:
    # The same labels that promote on a deployment of one site (the test above): with a second
    # site sharing the model, one site's labels must not move the other's.
    with session_scope(sessions) as session:
        session.add(Site(name="other-paper", policy={}))
    add_labels(sessions, site_id, 60)
    with session_scope(sessions) as session:
        job_id = start_retrain(session, site_id, actor="alice").id
    result = _run(sessions, job_id, config(base_dir), tmp_path)
    assert result is not None and not result["promoted"], result
    assert any("only an operator promotes it" in r for r in result["reasons"]), result
    assert result["comparisons"], "the rule was still applied and recorded"
    with session_scope(sessions) as session:
        job = get_job(session, job_id)
        assert active_version(session) == artifact_identity(first_model)[0]
        candidate = session.get_one(ModelVersion, job["candidate_version"])
        actions = list(session.scalars(select(ModelEvent.action)))
    assert (job["stage"], candidate.status) == ("done: waiting for an operator", "candidate")
    assert "auto_promote" not in actions


def test_the_holdout_is_the_most_recent_share_and_is_never_trained_on(
    sessions: sessionmaker[Session], site_id: int
) -> None:
    add_labels(sessions, site_id, 11)
    with session_scope(sessions) as session:
        labels = site_labels(session, site_id)
    split = split_by_time(labels, 0.2)
    assert split.holdout_texts == labels.texts[-2:]
    assert split.train_texts == labels.texts[:-2]
    assert split.labels_until == labels.times[-1].isoformat()


def test_a_second_retrain_is_refused_while_one_is_live_and_none_without_new_labels(
    sessions: sessionmaker[Session], site_id: int, base_dir: Path, tmp_path: Path
) -> None:
    with session_scope(sessions) as session, pytest.raises(NoNewLabels, match="no labels"):
        start_retrain(session, site_id, actor="alice")
    add_labels(sessions, site_id, 60)
    with session_scope(sessions) as session:
        job_id = start_retrain(session, site_id, actor="alice").id
    with session_scope(sessions) as session, pytest.raises(JobInProgress, match=job_id):
        start_retrain(session, site_id, actor="bob")
    assert _run(sessions, job_id, config(base_dir), tmp_path)["promoted"]
    assert _run(sessions, job_id, config(base_dir), tmp_path) is None, "a job runs once"
    # The active model now knows every label of the site (its holdout included).
    with session_scope(sessions) as session, pytest.raises(NoNewLabels, match="news"):
        start_retrain(session, site_id, actor="alice")
    add_labels(sessions, site_id, 1, start=60)
    with session_scope(sessions) as session:
        assert start_retrain(session, site_id, actor="alice").status == "queued"


def test_a_job_whose_worker_died_is_failed_by_the_sweep_and_registers_nothing(
    sessions: sessionmaker[Session], site_id: int, base_dir: Path, tmp_path: Path
) -> None:
    add_labels(sessions, site_id, 20)
    with session_scope(sessions) as session:
        job_id = start_retrain(session, site_id, actor="alice").id
        session.flush()
        session.execute(
            update(TrainingJob)
            .where(TrainingJob.id == job_id)
            .values(status="running", heartbeat_at=utcnow() - timedelta(seconds=300))
        )
    before = _versions(sessions)
    with session_scope(sessions) as session:
        assert fail_stale_jobs(session, stale_seconds=120, queued_seconds=900) == [job_id]
    with session_scope(sessions) as session:
        job = get_job(session, job_id)
        assert "no heartbeat" in job["error"] and "nothing was registered" in job["error"]
        # The slot is free again: a new job may start.
        new_id = start_retrain(session, site_id, actor="alice").id
        session.flush()
        session.execute(
            update(TrainingJob)
            .where(TrainingJob.id == new_id)
            .values(created_at=utcnow() - timedelta(seconds=1000))
        )
    with session_scope(sessions) as session:
        assert fail_stale_jobs(session, stale_seconds=120, queued_seconds=900) == [new_id]
        assert "no training worker" in (get_job(session, new_id)["error"] or "")
    assert _run(sessions, job_id, config(base_dir), tmp_path) is None
    assert _versions(sessions) == before


def test_a_job_that_fails_registers_nothing_and_leaves_the_active_model(
    sessions: sessionmaker[Session], site_id: int, first_model: Path, tmp_path: Path
) -> None:
    add_labels(sessions, site_id, 20)
    with session_scope(sessions) as session:
        job_id = start_retrain(session, site_id, actor="alice").id
    before = _versions(sessions)
    assert _run(sessions, job_id, config(tmp_path / "nowhere"), tmp_path) is None
    with session_scope(sessions) as session:
        job = get_job(session, job_id)
        assert active_version(session) == artifact_identity(first_model)[0]
    assert job["status"] == "failed" and "MODERATION_TRAINING_DATA_DIR" in job["error"]
    assert _versions(sessions) == before
    assert not (tmp_path / "work" / job_id).exists(), "scratch files are removed"


def test_a_job_swept_while_it_ran_does_not_register_its_candidate(
    sessions: sessionmaker[Session],
    site_id: int,
    base_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_labels(sessions, site_id, 20)
    with session_scope(sessions) as session:
        job_id = start_retrain(session, site_id, actor="alice").id
    import service.models.retrain as retrain

    real_judge: Callable[..., Any] = retrain.judge

    def judge_after_a_sweep(*args: Any, **kwargs: Any) -> Any:
        # As if the heartbeat had stalled long enough for beat's sweep to give up on the job.
        with session_scope(sessions) as session:
            fail_stale_jobs(
                session, stale_seconds=1, queued_seconds=1, now=utcnow() + timedelta(hours=1)
            )
        return real_judge(*args, **kwargs)

    monkeypatch.setattr(retrain, "judge", judge_after_a_sweep)
    before = _versions(sessions)
    assert _run(sessions, job_id, config(base_dir), tmp_path) is None
    assert _versions(sessions) == before
    with session_scope(sessions) as session:
        assert get_job(session, job_id)["status"] == "failed"


def test_an_unreachable_queue_fails_the_job_at_once(
    sessions: sessionmaker[Session], site_id: int
) -> None:
    add_labels(sessions, site_id, 5)
    with pytest.raises(Unavailable):
        request_retrain(
            sessions,
            site_id,
            actor="a",
            enqueue=lambda _: False,
            stale_seconds=60,
            queued_seconds=60,
        )
    with session_scope(sessions) as session:
        job = session.scalars(select(TrainingJob)).one()
        assert (job.status, job.active_slot) == ("failed", None)
        assert "unreachable" in (job.error or "")


def test_the_schedule_starts_a_job_for_a_site_with_enough_new_labels(
    sessions: sessionmaker[Session], site_id: int
) -> None:
    sent: list[str] = []

    def enqueue(job_id: str) -> bool:
        sent.append(job_id)
        return True

    def check(minimum: int) -> str | None:
        return _scheduled(sessions, minimum, enqueue=enqueue)

    add_labels(sessions, site_id, 9)
    assert check(10) is None and check(0) is None
    add_labels(sessions, site_id, 1, start=9)
    job_id = check(10)
    assert job_id is not None and sent == [job_id]
    assert check(10) is None, "one job at a time"
    with session_scope(sessions) as session:
        assert get_job(session, job_id)["requested_by"] == "schedule"


def _scheduled(
    sessions: sessionmaker[Session],
    minimum: int,
    *,
    backoff: timedelta = timedelta(0),
    enqueue: Callable[[str], bool] = lambda _: True,
) -> str | None:
    return retrain_if_due(
        sessions,
        min_new_labels=minimum,
        backoff=backoff,
        enqueue=enqueue,
        stale_seconds=60,
        queued_seconds=60,
    )


def test_the_schedule_never_retrains_on_labels_a_refused_candidate_has_read(
    sessions: sessionmaker[Session], site_id: int, base_dir: Path, first_model: Path, tmp_path: Path
) -> None:
    # A margin no candidate can meet: every candidate is refused and the active model stays.
    refusing = config(base_dir, margin=-1.0)
    add_labels(sessions, site_id, 30)
    first_job = _scheduled(sessions, 30)
    assert first_job is not None
    result = _run(sessions, first_job, refusing, tmp_path)
    assert result is not None and not result["promoted"] and result["reasons"], result
    with session_scope(sessions) as session:
        assert active_version(session) == artifact_identity(first_model)[0]
    # The active model has seen none of the 30 labels, but a job has read them all: the old
    # schedule started a job for them again at every check.
    for _ in range(3):
        assert _scheduled(sessions, 30) is None
    add_labels(sessions, site_id, 29, start=30)
    assert _scheduled(sessions, 30) is None, "29 unread labels are not enough"
    add_labels(sessions, site_id, 1, start=59)
    second_job = _scheduled(sessions, 30)
    assert second_job is not None and second_job != first_job
    with session_scope(sessions) as session:
        job = session.get_one(TrainingJob, first_job)
        assert job.labels_until is not None and job.labels_used == 24


def test_after_a_refusal_the_schedule_waits_longer_for_each_one_in_a_row(
    sessions: sessionmaker[Session], site_id: int, base_dir: Path, tmp_path: Path
) -> None:
    hour = timedelta(hours=1)
    refusing = config(base_dir, margin=-1.0)
    add_labels(sessions, site_id, 20)
    job_id = _scheduled(sessions, 10)
    assert job_id is not None
    _run(sessions, job_id, refusing, tmp_path)
    add_labels(sessions, site_id, 20, start=20)
    assert _scheduled(sessions, 10, backoff=hour) is None, "new labels, but within the backoff"
    with session_scope(sessions) as session:
        schedule = site_schedule(session, site_id, backoff=hour)
        finished = session.get_one(TrainingJob, job_id).finished_at
    assert finished is not None
    assert (schedule.unread_labels, schedule.unpromoted_in_a_row) == (20, 1)
    assert schedule.not_before == finished + hour
    # Once the backoff has passed (here: none asked for), the next job runs, and is refused.
    second = _scheduled(sessions, 10)
    assert second is not None
    _run(sessions, second, refusing, tmp_path)
    with session_scope(sessions) as session:
        schedule = site_schedule(session, site_id, backoff=hour)
        finished = session.get_one(TrainingJob, second).finished_at
        assert finished is not None and schedule.not_before == finished + 2 * hour
        week = site_schedule(session, site_id, backoff=MAX_BACKOFF)
        assert week.not_before == finished + MAX_BACKOFF, "doubling stops at a week"


def test_a_promotion_ends_the_backoff(
    sessions: sessionmaker[Session], site_id: int, base_dir: Path, tmp_path: Path
) -> None:
    add_labels(sessions, site_id, 60)
    refused = _scheduled(sessions, 10)
    assert refused is not None
    _run(sessions, refused, config(base_dir, margin=-1.0), tmp_path)
    add_labels(sessions, site_id, 60, start=60)
    promoted = _scheduled(sessions, 10)
    assert promoted is not None
    assert _run(sessions, promoted, config(base_dir), tmp_path)["promoted"]
    with session_scope(sessions) as session:
        schedule = site_schedule(session, site_id, backoff=timedelta(days=1))
    assert (schedule.unpromoted_in_a_row, schedule.not_before, schedule.unread_labels) == (
        0,
        None,
        0,
    )


def test_a_candidate_an_operator_promoted_later_ends_the_backoff_and_a_failed_job_read_nothing(
    sessions: sessionmaker[Session], site_id: int
) -> None:
    add_labels(sessions, site_id, 12)
    now = utcnow()
    with session_scope(sessions) as session:
        active = active_version(session)
        newest = session.scalar(select(func.max(Label.updated_at)))
        # Waiting for an operator when it ended, then promoted by one: the site's labels took.
        session.add(
            TrainingJob(
                site_id=site_id, status="succeeded", active_slot=None, promoted=False,
                candidate_version=active, labels_until=newest, finished_at=now,
            )
        )  # fmt: skip
    with session_scope(sessions) as session:
        schedule = site_schedule(session, site_id, backoff=timedelta(hours=1))
    assert (schedule.unpromoted_in_a_row, schedule.not_before, schedule.unread_labels) == (
        0,
        None,
        0,
    )
    with session_scope(sessions) as session:
        # A later job killed before it made a candidate: its labels are still unread.
        session.execute(update(TrainingJob).values(status="failed", candidate_version=None))
    with session_scope(sessions) as session:
        schedule = site_schedule(session, site_id, backoff=timedelta(hours=1))
    assert schedule.unread_labels == 12 and schedule.unpromoted_in_a_row == 1
