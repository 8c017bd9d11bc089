"""Run one retraining job: train a candidate, measure it against the active model, register it.

The site's labels are split by time: the most recent `holdout_share` of them (by when they
were last labelled, rounded down) is the site holdout and is never trained on; the rest joins
the base training mix as one more corpus whose rows each weigh `label_weight` base rows times
their sampling weight (service/models/labels.py: an audited approval stands for the approvals nobody
audited). Why 5 by default: a site has hundreds or thousands of labels against ~111,000 base
rows, and they are the only in-domain ones, so at weight 1 they would barely move the model;
at much more, a few hundred reviewed (and so borderline, held) comments would outweigh the
base data they were selected from. The fixed evaluations are the base test file
(`jigsaw_test`) and the site holdout, its labels weighted as in training so that it measures
the site's traffic rather than its held comments; both models score both, and both get an
identity-bias table. The candidate is registered (and promoted, when the rule in
service/models/promotion.py allows) only in the job's last transaction, together with the job's
success.
"""

from __future__ import annotations

import csv
import gzip
import math
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import structlog
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from classifier import (
    ATTRIBUTES,
    BiasReport,
    DataError,
    ToxicityModel,
    identity_bias,
    load_corpus,
    load_model,
)
from classifier.artifact import save_model
from classifier.model import json_params
from classifier.training import ROW_WEIGHT_COLUMN, TEST_FILE, TRAINING_MIX, Source, train
from service.core.db import session_scope
from service.core.metrics import TRAINING_JOB_DURATION, TRAINING_JOBS
from service.core.settings import DEFAULT_THRESHOLDS, Settings
from service.core.tables import Site, TrainingJob, utcnow
from service.models.labels import SiteLabels, site_labels
from service.models.promotion import (
    MIN_CLASS_ROWS,
    Evaluation,
    Verdict,
    bias_view,
    judge,
    promote_checked,
)
from service.models.registry import active_version, fetch_artifact, register_version
from service.models.training_jobs import Heartbeat, JobStatus, claim_job, fail_job, report_progress

__all__ = ["SITE_FILE", "LabelSplit", "RetrainConfig", "run_job", "split_by_time", "write_labels"]

log = structlog.get_logger(__name__)

SITE_FILE = "site_labels"  # the site's training labels, as one more corpus of the mix


class RetrainError(Exception):
    """A job cannot go on; its message is the job's error."""


class _Abandoned(Exception):
    """The job was failed by the sweep while it ran: its result must not be registered."""


@dataclass(frozen=True)
class RetrainConfig:
    data_dir: Path
    label_weight: float = 5.0
    holdout_share: float = 0.2
    margin: float = 0.01
    thresholds: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    heartbeat_seconds: float = 5.0
    mix: Mapping[str, Source] | None = None  # None: classifier.training.TRAINING_MIX
    params: Mapping[str, Any] | None = None  # ToxicityModel parameters; None: its defaults
    min_class_rows: int = MIN_CLASS_ROWS
    random_state: int = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetrainConfig:
        return cls(
            data_dir=settings.training_data_dir,
            label_weight=settings.retrain_label_weight,
            holdout_share=settings.retrain_holdout_share,
            margin=settings.retrain_margin,
            thresholds=settings.thresholds,
            heartbeat_seconds=settings.retrain_heartbeat_seconds,
        )


@dataclass(frozen=True)
class LabelSplit:
    train_texts: list[str]
    train_labels: np.ndarray
    train_weights: np.ndarray
    holdout_texts: list[str]
    holdout_labels: np.ndarray
    holdout_weights: np.ndarray
    labels_until: str | None  # the newest label time in the snapshot (ISO)
    holdout_from: str | None  # the oldest label time in the holdout (ISO)


def split_by_time(labels: SiteLabels, share: float) -> LabelSplit:
    """The oldest labels to train on, the most recent `share` (rounded down) to hold out."""
    n = len(labels)
    cut = n - int(n * share)
    weights = labels.weight_array()
    return LabelSplit(
        train_texts=labels.texts[:cut],
        train_labels=labels.labels[:cut],
        train_weights=weights[:cut],
        holdout_texts=labels.texts[cut:],
        holdout_labels=labels.labels[cut:],
        holdout_weights=weights[cut:],
        labels_until=labels.times[-1].isoformat() if n else None,
        holdout_from=labels.times[cut].isoformat() if cut < n else None,
    )


def _json_safe(value: Any) -> Any:
    """JSON columns refuse NaN on PostgreSQL: undefined figures become null."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_labels(path: Path, texts: list[str], labels: np.ndarray, weights: np.ndarray) -> None:
    """A site's labels as a corpus of the training mix, each row with its sampling weight."""
    with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "comment_text", *ATTRIBUTES, ROW_WEIGHT_COLUMN])
        for i, (text, row, weight) in enumerate(zip(texts, labels, weights, strict=True)):
            cells = ("" if math.isnan(v) else int(v) for v in row)
            writer.writerow([i, text, *cells, repr(float(weight))])


def _training_dir(config: RetrainConfig, target: Path, split: LabelSplit) -> Path:
    """The base corpora (linked, not copied) and the site's training labels in one folder."""
    if not config.data_dir.is_dir():
        raise DataError(
            f"base training data not found at {config.data_dir.resolve()} "
            "(set MODERATION_TRAINING_DATA_DIR)"
        )
    target.mkdir(parents=True, exist_ok=True)
    for path in config.data_dir.iterdir():
        if path.name.endswith(".csv.gz") and path.name != f"{SITE_FILE}.csv.gz":
            (target / path.name).symlink_to(path.resolve())
    if split.train_texts:
        write_labels(
            target / f"{SITE_FILE}.csv.gz",
            split.train_texts,
            split.train_labels,
            split.train_weights,
        )
    return target


def _mix(config: RetrainConfig, split: LabelSplit) -> dict[str, Source]:
    mix = dict(TRAINING_MIX if config.mix is None else config.mix)
    if split.train_texts:
        mix[SITE_FILE] = Source(ATTRIBUTES, config.label_weight, row_weights=True)
    return mix


def _sampling_summary(labels: SiteLabels) -> dict[str, dict[str, float]]:
    """Per kind of label (held, approved, other): how many, and the weight each got."""
    weights = labels.weight_array()
    summary: dict[str, dict[str, float]] = {}
    for kind in sorted(set(labels.sampling)):
        mine = weights[[i for i, s in enumerate(labels.sampling) if s == kind]]
        summary[kind] = {"labels": len(mine), "weight": round(float(mine.max()), 3)}
    return summary


def _proba(model: ToxicityModel, texts: list[str]) -> np.ndarray:
    return model.predict_proba(texts) if texts else np.empty((0, len(ATTRIBUTES)))


def run_job(
    sessions: sessionmaker[Session],
    job_id: str,
    *,
    config: RetrainConfig,
    work_dir: Path,
    cache_dir: Path,
) -> dict[str, Any] | None:
    """Run a queued job to its end; None when it was not queued (already run, or swept).

    Any error fails the job with its message and registers nothing.
    """
    with session_scope(sessions) as session:
        if not claim_job(session, job_id):
            log.info("training_job_not_queued", job_id=job_id)
            return None
    scratch, began = work_dir / job_id, time.monotonic()
    try:
        with Heartbeat(sessions, job_id, every=config.heartbeat_seconds):
            result = _run(sessions, job_id, config=config, scratch=scratch, cache_dir=cache_dir)
        _observe("promoted" if result.get("promoted") else "waiting", began)
        return result
    except _Abandoned:
        log.warning("training_job_abandoned", job_id=job_id)
        return None
    except Exception as exc:
        log.exception("training_job_failed", job_id=job_id)
        known = isinstance(exc, RetrainError | DataError)
        message = str(exc) if known else f"{type(exc).__name__}: {exc}"
        with session_scope(sessions) as session:
            failed = fail_job(session, job_id, message)
        if failed:  # else the sweep had failed it already, and counted it
            _observe("failed", began)
        return None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _observe(outcome: str, began: float) -> None:
    TRAINING_JOBS.labels(outcome=outcome).inc()
    TRAINING_JOB_DURATION.labels(outcome=outcome).observe(time.monotonic() - began)


_Progress = Callable[[str, float], None]  # (stage, percent)


@dataclass(frozen=True)
class _Snapshot:
    """What the job read in its first transaction."""

    site_id: int
    site_name: str
    parent: str  # the active version the candidate is compared with
    labels: SiteLabels
    split: LabelSplit


@dataclass(frozen=True)
class _Candidate:
    model: ToxicityModel
    report: dict[str, Any]  # classifier.training.train's
    site_data: dict[str, Any]  # what the card and the record keep of the site's labels
    directory: Path  # the saved artifact


def _snapshot(sessions: sessionmaker[Session], job_id: str, config: RetrainConfig) -> _Snapshot:
    """The job's site, the active version and the site's labels; notes how many will train."""
    with session_scope(sessions) as session:
        job = session.get_one(TrainingJob, job_id)
        site = session.get(Site, job.site_id) if job.site_id is not None else None
        if site is None:
            raise RetrainError("the job's site no longer exists")
        parent = active_version(session)
        if parent is None:
            raise RetrainError("there is no active model to compare a candidate with")
        site_id, site_name = site.id, site.name
        labels = site_labels(session, site_id)
        split = split_by_time(labels, config.holdout_share)
        session.execute(
            update(TrainingJob)
            .where(TrainingJob.id == job_id)
            .values(
                labels_used=len(split.train_texts),
                labels_until=labels.times[-1] if len(labels) else None,
            )
            .execution_options(synchronize_session=False)
        )
    if not split.train_texts and not split.holdout_texts:
        raise RetrainError(f"site {site_name!r} has no labels")
    return _Snapshot(site_id, site_name, parent, labels, split)


def _train_candidate(
    config: RetrainConfig,
    snapshot: _Snapshot,
    *,
    job_id: str,
    scratch: Path,
    progress: _Progress,
) -> _Candidate:
    """Train on the base mix plus the site's labels; save the model with its card."""
    split = snapshot.split
    progress("training the candidate", 5)
    model, report = train(
        _training_dir(config, scratch / "data", split),
        mix=_mix(config, split),
        params=dict(config.params or {}),
        random_state=config.random_state,
        progress=lambda stage, f: progress(f"training: {stage}", 5 + 60 * f),
    )
    site_data = {
        "id": snapshot.site_id,
        "name": snapshot.site_name,
        "labels_until": split.labels_until,
        "trained_rows": len(split.train_texts),
        "holdout_rows": len(split.holdout_texts),
        "holdout_from": split.holdout_from,
        "weight": config.label_weight,
        "sampling": _sampling_summary(snapshot.labels),
    }
    command = f"moderation retrain --site {snapshot.site_name} (training job {job_id})"
    model.card_["command"] = command
    model.card_["retraining"] = {"parent": snapshot.parent, "site_labels": site_data}
    return _Candidate(model, report, site_data, save_model(model, scratch / "candidate"))


def _load_active(sessions: sessionmaker[Session], parent: str, cache_dir: Path) -> ToxicityModel:
    with session_scope(sessions) as session:
        fetched = fetch_artifact(session, parent, cache_dir)
    return load_model(fetched.directory, expected_sha256=fetched.sha256)


def _evaluations(
    config: RetrainConfig,
    split: LabelSplit,
    model: ToxicityModel,
    active: ToxicityModel,
    *,
    progress: _Progress,
) -> list[Evaluation]:
    """Both models on the fixed evaluations: the base test file and the site's holdout."""
    progress("evaluating on the base test data", 72)
    test = load_corpus(config.data_dir / f"{TEST_FILE}.csv.gz")
    evaluations = [
        Evaluation("base_test", test.labels, _proba(model, test.texts), _proba(active, test.texts))
    ]
    progress("evaluating on the site's holdout", 78)
    holdout = split.holdout_texts
    evaluations.append(
        Evaluation(
            "site_holdout",
            split.holdout_labels,
            _proba(model, holdout),
            _proba(active, holdout),
            weights=split.holdout_weights,
        )
    )
    return evaluations


def _bias_reports(
    config: RetrainConfig, model: ToxicityModel, active: ToxicityModel
) -> dict[str, BiasReport]:
    thresholds = dict(config.thresholds)
    return {
        name: identity_bias(m, threshold=thresholds["toxic"], hold_thresholds=thresholds)
        for name, m in (("candidate", model), ("active", active))
    }


def _params(config: RetrainConfig, split: LabelSplit, model: ToxicityModel) -> dict[str, Any]:
    """The parameters the candidate was trained and judged with."""
    return {
        "model": json_params(model),
        "label_weight": config.label_weight,
        "holdout_share": config.holdout_share,
        "margin": config.margin,
        "min_class_rows": config.min_class_rows,
        "mix": {
            name: {
                "weight": s.weight,
                "attributes": list(s.attributes),
                "holdout": s.holdout,
                "row_weights": s.row_weights,
            }
            for name, s in _mix(config, split).items()
        },
    }


def _record(
    config: RetrainConfig,
    split: LabelSplit,
    candidate: _Candidate,
    *,
    parent: str,
    evaluations: Sequence[Evaluation],
    verdict: Verdict,
    bias: Mapping[str, BiasReport],
) -> dict[str, Any]:
    """What the registry keeps of the candidate: metrics, bias tables, data and parameters."""
    model, report = candidate.model, candidate.report
    return {
        "metrics": {
            "compared_with": parent,
            "evaluations": {e.name: e.metrics() for e in evaluations},
            "rule": verdict.as_dict(),
            "training": report["metrics"],
            "recommended_thresholds": {k: v["threshold"] for k, v in report["thresholds"].items()},
        },
        "bias": {
            **bias_view(bias["candidate"]),
            "active": {"version": parent, **bias_view(bias["active"])},
        },
        "data": {
            "base": {
                "dir": str(config.data_dir.resolve()),
                "files": [r for r in model.card_["data"] if r["file"] != f"{SITE_FILE}.csv.gz"],
            },
            "site": candidate.site_data,
            "evaluations": {
                "base_test": f"{TEST_FILE}.csv.gz",
                "site_holdout": f"the most recent {config.holdout_share:.0%} of the site's labels",
            },
        },
        "params": _params(config, split, model),
    }


def _run(
    sessions: sessionmaker[Session],
    job_id: str,
    *,
    config: RetrainConfig,
    scratch: Path,
    cache_dir: Path,
) -> dict[str, Any]:
    progress = partial(report_progress, sessions, job_id)
    progress("reading the site's labels", 2)
    snapshot = _snapshot(sessions, job_id, config)
    split, parent = snapshot.split, snapshot.parent
    candidate = _train_candidate(
        config, snapshot, job_id=job_id, scratch=scratch, progress=progress
    )

    progress("loading the active model", 68)
    active = _load_active(sessions, parent, cache_dir)
    evaluations = _evaluations(config, split, candidate.model, active, progress=progress)
    progress("identity-fairness tables", 84)
    bias = _bias_reports(config, candidate.model, active)
    verdict = judge(
        evaluations,
        candidate_bias=bias["candidate"],
        active_bias=bias["active"],
        margin=config.margin,
        min_class_rows=config.min_class_rows,
    )
    progress("registering the candidate", 95)
    record = _record(
        config, split, candidate, parent=parent, evaluations=evaluations, verdict=verdict, bias=bias
    )
    return _register(
        sessions,
        job_id,
        candidate.directory,
        parent=parent,
        site_name=snapshot.site_name,
        verdict=verdict,
        record=_json_safe(record),
    )


def _succeed(
    job: TrainingJob, candidate: str, *, parent: str, reasons: list[str], verdict: Verdict
) -> None:
    """The job ends well and frees the slot; promoted when nothing stood in the way."""
    promoted = not reasons
    job.status = JobStatus.SUCCEEDED
    job.active_slot = None
    job.stage = "done: promoted" if promoted else "done: waiting for an operator"
    job.percent = 100.0
    job.finished_at = utcnow()
    job.candidate_version = candidate
    job.promoted = promoted
    job.result = _json_safe(
        {
            **(job.result or {}),
            "parent": parent,
            "candidate": candidate,
            "promoted": promoted,
            "reasons": reasons,
            "comparisons": verdict.comparisons,
        }
    )


def _shared_model_reasons(session: Session, site_name: str) -> list[str]:
    """Why a candidate must wait for an operator although it passed: the model is shared, so
    one site's labels (which its own keys produce) must not move every other site's model."""
    sites = session.scalar(select(func.count()).select_from(Site)) or 0
    if sites <= 1:
        return []
    return [
        f"trained on the labels of site {site_name} alone, while the model decides for all "
        f"{sites} sites: only an operator promotes it (POST /v1/models/{{version}}/promote)"
    ]


def _register(
    sessions: sessionmaker[Session],
    job_id: str,
    candidate_dir: Path,
    *,
    parent: str,
    site_name: str,
    verdict: Verdict,
    record: dict[str, Any],
) -> dict[str, Any]:
    """The job's one write of its outcome: the version, the promotion, the job's success."""
    actor = f"retrain job {job_id}"
    with session_scope(sessions) as session:
        job = session.get(TrainingJob, job_id, with_for_update=True)
        if job is None or job.status != JobStatus.RUNNING:
            raise _Abandoned(job_id)
        row = register_version(session, candidate_dir, created_by=actor, parent=parent, **record)
        reasons = list(verdict.failures) + _shared_model_reasons(session, site_name)
        current = active_version(session)
        if verdict.passed and current != parent:
            reasons.append(
                f"the active model moved from {parent} to {current} while the job ran, so the "
                "comparison no longer holds"
            )
        promoted = not reasons
        if promoted:
            promote_checked(
                session,
                row.version,
                actor=actor,
                reason=(
                    f"retrained for site {site_name}; not worse than {parent} by more than the "
                    f"margin on every evaluation: {verdict.summary}"
                ),
                action="auto_promote",
            )
        _succeed(job, row.version, parent=parent, reasons=reasons, verdict=verdict)
        result = dict(job.result)
    log.info("training_job_done", job_id=job_id, candidate=row.version, promoted=promoted)
    return result
