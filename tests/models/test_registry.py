"""The model registry and each process's model holder, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from classifier import save_model
from classifier.artifact import artifact_identity
from service.core.db import session_scope
from service.core.errors import ArtifactCorrupt, Conflict, ModelNotFound
from service.core.tables import ModelVersion
from service.models.holder import ModelHolder
from service.models.registry import (
    active_version,
    ensure_registered,
    fetch_artifact,
    model_events,
    promote,
    register_version,
    retire,
    rollback,
    set_shadow,
)
from tests.factories import tiny_model


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two different small models: the deployment's first, and a candidate."""
    root = tmp_path_factory.mktemp("artifacts")
    return save_model(tiny_model(0), root / "first"), save_model(tiny_model(1), root / "second")


def _version(directory: Path) -> str:
    return artifact_identity(directory)[0]


def test_promotion_and_rollback_move_the_alias_and_record_who_and_why(
    sessions: sessionmaker[Session], artifacts: tuple[Path, Path]
) -> None:
    first, second = artifacts
    with session_scope(sessions) as session:
        assert ensure_registered(session, first) == _version(first)
        assert ensure_registered(session, second) == _version(first), "only an empty registry"
        candidate = register_version(session, second, created_by="trainer", parent=_version(first))
        assert candidate.status == "candidate"
    with session_scope(sessions) as session:
        moved = promote(session, _version(second), actor="alice", reason="better on news")
        assert moved == {"active": _version(second), "previous": _version(first)}
        with pytest.raises(Conflict, match="already active"):
            promote(session, _version(second), actor="alice")
        with pytest.raises(ModelNotFound):
            promote(session, "tfidf-lr-unknown", actor="alice")
    with session_scope(sessions) as session:
        assert rollback(session, actor="bob", reason="complaints")["active"] == _version(first)
        assert active_version(session) == _version(first)
        events = model_events(session)
    assert [(e["action"], e["actor"]) for e in events[:2]] == [
        ("rollback", "bob"),
        ("promote", "alice"),
    ]
    assert events[0]["reason"] == "complaints"
    with session_scope(sessions) as session:
        retire(session, _version(second), actor="bob")
        with pytest.raises(Conflict, match="retired"):
            promote(session, _version(second), actor="alice")
        with pytest.raises(Conflict, match="active model cannot be retired"):
            retire(session, _version(first), actor="bob")


def test_a_corrupt_artifact_is_refused_and_the_old_model_keeps_serving(
    sessions: sessionmaker[Session], artifacts: tuple[Path, Path], tmp_path: Path
) -> None:
    first, second = artifacts
    holder = ModelHolder(sessions, cache_dir=tmp_path / "cache", bootstrap_dir=first)
    holder.start(watch=False)
    assert holder.scorer.version == _version(first)
    with session_scope(sessions) as session:
        register_version(session, second, created_by="trainer")
        session.execute(
            update(ModelVersion)
            .where(ModelVersion.version == _version(second))
            .values(archive=b"PK\x03\x04 truncated")
        )
        promote(session, _version(second), actor="alice")
    with session_scope(sessions) as session, pytest.raises(ArtifactCorrupt):
        fetch_artifact(session, _version(second), tmp_path / "other-cache")
    holder.refresh()
    assert holder.scorer.version == _version(first), "refused; the old model still serves"
    assert holder.scorer.predict_proba(["you idiot"]).shape == (1, 6)


def test_the_holder_follows_promotions_and_rollbacks(
    sessions: sessionmaker[Session], artifacts: tuple[Path, Path], tmp_path: Path
) -> None:
    first, second = artifacts
    holder = ModelHolder(sessions, cache_dir=tmp_path / "cache", bootstrap_dir=first)
    holder.start(watch=False)
    with session_scope(sessions) as session:
        register_version(session, second, created_by="trainer")
        promote(session, _version(second), actor="alice")
    holder.refresh()
    assert holder.scorer.version == _version(second)
    assert (tmp_path / "cache" / _version(second) / "manifest.json").is_file()
    with session_scope(sessions) as session:
        rollback(session, actor="bob")
    holder.refresh()
    assert holder.scorer.version == _version(first)


def test_a_holder_without_shadow_ignores_the_shadow_alias(
    sessions: sessionmaker[Session], artifacts: tuple[Path, Path], tmp_path: Path
) -> None:
    first, second = artifacts
    worker = ModelHolder(sessions, cache_dir=tmp_path / "worker", bootstrap_dir=first)
    api = ModelHolder(sessions, cache_dir=tmp_path / "api", bootstrap_dir=first, shadow=False)
    worker.start(watch=False)
    api.start(watch=False)
    with session_scope(sessions) as session:
        register_version(session, second, created_by="trainer")
        set_shadow(session, _version(second), actor="alice")
    worker.refresh()
    api.refresh()
    assert worker.shadow is not None and worker.shadow.version == _version(second)
    assert api.shadow is None
    assert api.scorer.version == _version(first)
    assert not (tmp_path / "api" / _version(second)).exists(), "never fetched"
