"""Artifacts round-trip exactly and refuse to load when damaged."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from classifier import ArtifactError, ToxicityModel, load_model, save_model


@pytest.fixture
def artifact(tmp_path: Path, model_dir: Path) -> Path:
    copy = tmp_path / "artifact"
    shutil.copytree(model_dir, copy)
    return copy


def test_save_and_load_give_identical_predictions(
    model: ToxicityModel, model_dir: Path, make_corpus: Callable[[], tuple[list[str], np.ndarray]]
) -> None:
    texts, _ = make_corpus()
    texts += ["\uff39\uff4f\uff55 \uff29\uff24\uff29\uff2f\uff34", "", "unseen words entirely"]
    loaded = load_model(model_dir)
    np.testing.assert_array_equal(loaded.predict_proba(texts), model.predict_proba(texts))
    assert loaded.explain("you stupid idiot") == model.explain("you stupid idiot")
    assert loaded.sha256 == model.sha256 and len(loaded.sha256) == 64
    assert loaded.version == f"tfidf-lr-{loaded.sha256[:12]}"


def test_saving_the_same_model_twice_gives_the_same_bytes(
    model: ToxicityModel, tmp_path: Path
) -> None:
    first, second = save_model(model, tmp_path / "a"), save_model(model, tmp_path / "b")
    for name in ("model.npz", "model.json", "manifest.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes()


def test_artifact_holds_no_pickles(artifact: Path) -> None:
    with np.load(artifact / "model.npz", allow_pickle=False) as arrays:
        assert all(arrays[name].dtype != object for name in arrays.files)


def test_tampered_weights_raise_artifact_error(artifact: Path) -> None:
    data = bytearray((artifact / "model.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (artifact / "model.npz").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"model\.npz"):
        load_model(artifact)


def test_truncated_metadata_raises_artifact_error(artifact: Path) -> None:
    data = (artifact / "model.json").read_bytes()
    (artifact / "model.json").write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError):
        load_model(artifact)


def test_missing_file_or_manifest_raises_artifact_error(artifact: Path, tmp_path: Path) -> None:
    (artifact / "model.npz").unlink()
    with pytest.raises(ArtifactError, match="missing"):
        load_model(artifact)
    with pytest.raises(ArtifactError, match="manifest"):
        load_model(tmp_path / "nowhere")


def test_manifest_edited_to_match_tampered_file_still_fails(artifact: Path) -> None:
    manifest = json.loads((artifact / "manifest.json").read_text())
    manifest["files"]["model.json"] = "0" * 64
    (artifact / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError):
        load_model(artifact)
