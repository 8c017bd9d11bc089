"""The service's Prometheus metrics, defined once; every process records into them.

Names follow Prometheus conventions: a `moderation_` prefix, base units (seconds), `_total`
for counters. Label values are bounded: route templates (never raw paths), sites (tenants),
actions and outcomes.

Several processes (API workers, Celery workers) share one machine's figures through
prometheus-client's multiprocess mode: when `PROMETHEUS_MULTIPROC_DIR` is set (`moderation up`
sets it to `var/metrics`), every process writes its values there and any one of them can
serve the sum (`scrape_registry`). Without it, each process serves its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Metric,
    multiprocess,
)
from prometheus_client.registry import Collector

__all__ = [
    "COMMENTS_DECIDED",
    "COMMENTS_SUBMITTED",
    "DECISION_LATENCY",
    "HTTP_REQUESTS",
    "HTTP_REQUEST_DURATION",
    "MODEL_ACTIVE",
    "SCORING_BATCH_SIZE",
    "TASK_DURATION",
    "TRAINING_JOBS",
    "TRAINING_JOB_DURATION",
    "WEBHOOK_ATTEMPTS",
    "WEBHOOK_DELIVERY_LAG",
    "multiprocess_dir",
    "note_active_model",
    "scrape_registry",
]

# Milliseconds to a few seconds: a decision is a few ms, a slow one tens.
_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "moderation_http_requests_total",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "moderation_http_request_duration_seconds",
    "Time from a request's arrival to its response's last byte, by route template and method.",
    ["route", "method"],
    buckets=_FAST,
)
COMMENTS_SUBMITTED = Counter(
    "moderation_comments_submitted_total",
    "Comments stored (a repeated external id is not counted again), by site.",
    ["site"],
)
COMMENTS_DECIDED = Counter(
    "moderation_comments_decided_total",
    "Comments decided by a scoring worker, by site and action (approve, hold, reject).",
    ["site", "action"],
)
DECISION_LATENCY = Histogram(
    "moderation_decision_latency_seconds",
    "Time from a comment's submission to its decision, as the site's reader waited it.",
    buckets=(*_FAST, 30.0, 60.0, 300.0),
)
SCORING_BATCH_SIZE = Histogram(
    "moderation_scoring_batch_size",
    "Comments a scoring worker decided in one batch.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
TASK_DURATION = Histogram(
    "moderation_task_duration_seconds",
    "Time a worker spent running a task, by task name and outcome (success, failure, retry).",
    ["task", "outcome"],
    buckets=(*_FAST, 30.0, 60.0, 300.0, 1800.0),
)
WEBHOOK_ATTEMPTS = Counter(
    "moderation_webhook_attempts_total",
    "Webhook delivery attempts, by outcome (delivered, retry, gave_up, blocked).",
    ["outcome"],
)
WEBHOOK_DELIVERY_LAG = Histogram(
    "moderation_webhook_delivery_lag_seconds",
    "Time from an event to its delivery's acceptance by the receiver.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0, 86_400.0),
)
TRAINING_JOBS = Counter(
    "moderation_training_jobs_total",
    "Retraining jobs ended, by outcome (promoted, waiting, failed).",
    ["outcome"],
)
TRAINING_JOB_DURATION = Histogram(
    "moderation_training_job_duration_seconds",
    "Time a retraining job ran, from its start to its end, by outcome.",
    ["outcome"],
    buckets=(10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 3600.0),
)
# An info metric in all but name: prometheus-client's Info does not work across processes.
MODEL_ACTIVE = Gauge(
    "moderation_model_active",
    "1 for the model version this process decides with (a process that swapped holds 0 for "
    "the one before), by version.",
    ["version"],
    multiprocess_mode="livemax",
)

_noted: list[str] = []


def note_active_model(version: str) -> None:
    """Say which model version this process now decides with."""
    for previous in _noted:
        MODEL_ACTIVE.labels(version=previous).set(0)
    _noted[:] = [version]
    MODEL_ACTIVE.labels(version=version).set(1)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class _ThisProcess(Collector):
    """This process's own values, when they are not shared through files."""

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def scrape_registry(extra: Iterable[Collector] = ()) -> CollectorRegistry:
    """What a scrape reads: every process's values when they are shared (else this
    process's), and `extra` collectors computed at scrape time (queue depths, say)."""
    registry = CollectorRegistry()
    if multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    for collector in extra:
        registry.register(collector)
    return registry
