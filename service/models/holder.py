"""Keep a process's model current: the registry's active version (and shadow), hot-swapped.

A background thread polls the registry every `poll_seconds`; when the active alias moves it
fetches the new version, verifies it and swaps it in with one reference assignment, so a batch
being scored keeps the model it started with and the next batch gets the new one. A version
that fails to fetch or verify is refused and the current model keeps serving; it is tried
again after `retry_seconds`, not on every poll.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import structlog
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from classifier.artifact import DEFAULT_MODEL_DIR, ArtifactError, artifact_identity
from service.core.db import session_scope
from service.core.metrics import note_active_model
from service.models.registry import (
    active_version,
    ensure_registered,
    fetch_artifact,
    shadow_version,
)
from service.models.scoring import ModelScorer, scorer_from

__all__ = ["ModelHolder", "register_bootstrap_model"]

log = structlog.get_logger(__name__)


def register_bootstrap_model(sessions: sessionmaker[Session], directory: Path | None) -> str:
    """Make the shipped (or configured) model the active one of an empty registry."""
    bootstrap = directory or DEFAULT_MODEL_DIR
    for _ in range(3):
        try:
            with session_scope(sessions) as session:
                return ensure_registered(session, bootstrap)
        except IntegrityError:  # another process registered it at the same moment
            continue
    with session_scope(sessions) as session:
        found = active_version(session)
    assert found is not None
    return found


class ModelHolder:
    """The active model of this process, and the shadow one if the process scores with it.

    `shadow=False` (the API, the CLI) never fetches nor keeps the shadow model: only scoring
    workers score with it, and it would cost every other process a model's memory.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        cache_dir: Path,
        bootstrap_dir: Path | None = None,
        poll_seconds: float = 1.0,
        retry_seconds: float = 30.0,
        shadow: bool = True,
    ) -> None:
        self.sessions = sessions
        self.with_shadow = shadow
        self.cache_dir = cache_dir
        self.bootstrap_dir = bootstrap_dir or DEFAULT_MODEL_DIR
        self.poll_seconds = poll_seconds
        self.retry_seconds = retry_seconds
        self._loaded: dict[str, ModelScorer] = {}
        self._scorer: ModelScorer | None = None
        self._shadow: ModelScorer | None = None
        self._failed: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def scorer(self) -> ModelScorer:
        if self._scorer is None:
            raise RuntimeError("ModelHolder.start() was not called")
        return self._scorer

    @property
    def shadow(self) -> ModelScorer | None:
        return self._shadow

    def start(self, *, watch: bool = True) -> ModelHolder:
        """Load the active model now; with `watch`, follow the registry in the background."""
        register_bootstrap_model(self.sessions, self.bootstrap_dir)
        self.refresh()
        if self._scorer is None:  # the registry's model could not be loaded: serve the shipped one
            self._scorer = self._load_bootstrap()
            note_active_model(self._scorer.version)
        if watch and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="model-watch", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            with contextlib.suppress(Exception):  # logged in refresh; the thread must live on
                self.refresh()

    def refresh(self) -> None:
        """One look at the registry; swap models if the alias or the shadow moved."""
        with self._lock:
            try:
                with session_scope(self.sessions) as session:
                    wanted = active_version(session)
                    shadow = shadow_version(session) if self.with_shadow else None
            except OperationalError as exc:  # the database is away: keep serving what we have
                log.warning("model_registry_unreachable", error=str(exc).splitlines()[0][:200])
                return
            if wanted is not None and (self._scorer is None or self._scorer.version != wanted):
                loaded = self._get(wanted)
                if loaded is not None:
                    previous = self._scorer.version if self._scorer else None
                    self._scorer = loaded
                    log.info("model_activated", version=wanted, previous=previous)
                    note_active_model(wanted)
            self._shadow = self._get(shadow) if shadow else None
            # Keep the serving and shadow models, and one more for a quick rollback.
            keep = {v for v in (wanted, shadow) if v}
            for version in list(self._loaded)[:-3]:
                if version not in keep:
                    self._loaded.pop(version, None)

    def _load_bootstrap(self) -> ModelScorer:
        scorer = scorer_from(self.bootstrap_dir)
        self._loaded[scorer.version] = scorer
        return scorer

    def _get(self, version: str) -> ModelScorer | None:
        if version in self._loaded:
            return self._loaded[version]
        failed_at = self._failed.get(version)
        if failed_at is not None and time.monotonic() - failed_at < self.retry_seconds:
            return None
        try:
            bootstrap = self._load_bootstrap_if(version)
            if bootstrap is not None:
                return bootstrap
            with session_scope(self.sessions) as session:
                fetched = fetch_artifact(session, version, self.cache_dir)
            scorer = scorer_from(fetched.directory, expected_sha256=fetched.sha256)
            if scorer.version != version:
                raise ValueError(f"artifact holds {scorer.version!r}, not {version!r}")
        except Exception as exc:
            self._failed[version] = time.monotonic()
            log.error("model_load_refused", version=version, error=str(exc)[:300])
            return None
        self._failed.pop(version, None)
        self._loaded[version] = scorer
        return scorer

    def _load_bootstrap_if(self, version: str) -> ModelScorer | None:
        """The shipped model loads from the package, not from the database."""
        try:
            shipped, _ = artifact_identity(self.bootstrap_dir)
        except ArtifactError:
            return None
        return self._load_bootstrap() if shipped == version else None
