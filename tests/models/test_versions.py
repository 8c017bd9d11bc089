"""Listing the registry's versions: newest first, the active one marked, each site's part of
another site's training hidden from its keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from classifier import save_model
from classifier.artifact import artifact_identity
from service.core.db import session_scope
from service.models.registry import ensure_registered, register_version
from service.models.versions import list_versions
from tests.factories import tiny_model


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("artifacts")
    return save_model(tiny_model(0), root / "first"), save_model(tiny_model(1), root / "second")


def test_versions_are_listed_newest_first_and_another_sites_training_is_hidden(
    sessions: sessionmaker[Session], artifacts: tuple[Path, Path]
) -> None:
    first, second = artifacts
    with session_scope(sessions) as session:
        active = ensure_registered(session, first)
    with session_scope(sessions) as session:
        register_version(
            session,
            second,
            created_by="retrain job 1",
            parent=active,
            metrics={"rule": {"passed": False}},
            data={"site": {"name": "other", "trained_rows": 40}},
        )
    candidate = artifact_identity(second)[0]
    with session_scope(sessions) as session:
        operator = list_versions(session, site_name=None)
        news = list_versions(session, site_name="news")
        other = list_versions(session, site_name="other")
    assert operator["active"] == news["active"] == active
    assert [v["version"] for v in operator["versions"]] == [candidate, active]
    assert [v["active"] for v in operator["versions"]] == [False, True]
    assert operator["versions"][0]["metrics"] == {"rule": {"passed": False}}
    assert other["versions"][0]["data"]["site"]["trained_rows"] == 40
    hidden = news["versions"][0]
    assert (hidden["version"], hidden["metrics"], hidden["data"]) == (candidate, {}, {})
    assert "archive" not in hidden
