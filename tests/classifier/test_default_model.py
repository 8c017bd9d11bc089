"""The model shipped with the package loads, verifies and separates clear cases."""

from __future__ import annotations

import json

import pytest

from classifier import ATTRIBUTES, ToxicityModel, load_default_model
from classifier.artifact import DEFAULT_MODEL_DIR, artifact_files


@pytest.fixture(scope="module")
def default_model() -> ToxicityModel:
    if not (DEFAULT_MODEL_DIR / "manifest.json").exists():
        pytest.skip("default model not trained yet (moderation train)")
    return load_default_model()


def test_clearly_toxic_text_scores_far_above_civil_text(default_model: ToxicityModel) -> None:
    toxic = default_model.score("you are a stupid idiot, shut up")
    civil = default_model.score("Thank you for the thoughtful article about the peace talks.")
    assert toxic["toxic"] > 0.8
    assert civil["toxic"] < 0.1
    assert toxic["insult"] > 0.5 > civil["insult"]


def test_default_model_explains_with_its_own_words(default_model: ToxicityModel) -> None:
    text = "you are a stupid idiot, shut up"
    words = {s.text for s in default_model.explain(text, "insult", top_k=3)}
    assert words & {"stupid", "idiot"}


def test_default_model_card_has_provenance_and_thresholds(default_model: ToxicityModel) -> None:
    card = default_model.card_
    assert card["command"].startswith("moderation train")
    assert set(card["recommended_thresholds"]) == set(ATTRIBUTES)
    assert all(0 < t < 1 for t in card["recommended_thresholds"].values())
    assert default_model.version_.startswith("tfidf-lr-")


def test_default_artifact_fits_the_size_budget() -> None:
    if not DEFAULT_MODEL_DIR.exists():
        pytest.skip("default model not trained yet")
    size = sum(p.stat().st_size for p in DEFAULT_MODEL_DIR.iterdir())
    assert size <= 25 * 1024 * 1024


def test_the_default_artifact_reserialises_to_its_own_bytes(
    default_model: ToxicityModel,
) -> None:
    files = artifact_files(default_model)
    for name, data in files.items():
        assert data == (DEFAULT_MODEL_DIR / name).read_bytes(), name
    manifest = json.loads((DEFAULT_MODEL_DIR / "manifest.json").read_text())
    assert default_model.sha256_ == manifest["sha256"]
    assert default_model.version_ == f"tfidf-lr-{manifest['sha256'][:12]}"
