"""Artifacts round-trip exactly and refuse to load when damaged."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from classifier import ArtifactError, ToxicityModel, load_model, save_model
from classifier.artifact import _digest, load_fitted

# Both loaders check the same things: the estimator's, and the scoring processes' own.
LOADERS = pytest.mark.parametrize("load", [load_model, load_fitted], ids=["model", "fitted"])


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
    assert loaded.sha256_ == model.sha256_ and len(loaded.sha256_) == 64
    assert loaded.version_ == f"tfidf-lr-{loaded.sha256_[:12]}"


def test_the_fitted_state_alone_scores_and_explains_as_the_estimator(
    model: ToxicityModel, model_dir: Path, make_corpus: Callable[[], tuple[list[str], np.ndarray]]
) -> None:
    texts, _ = make_corpus()
    fitted = load_fitted(model_dir)
    assert not isinstance(fitted, ToxicityModel)
    np.testing.assert_array_equal(fitted.predict_proba(texts), model.predict_proba(texts))
    assert fitted.explain_many("you stupid idiot", ["toxic", "insult"]) == model.explain_many(
        "you stupid idiot", ["toxic", "insult"]
    )
    assert (fitted.sha256_, fitted.version_) == (model.sha256_, model.version_)


def test_saving_the_same_model_twice_gives_the_same_bytes(
    model: ToxicityModel, tmp_path: Path
) -> None:
    first, second = save_model(model, tmp_path / "a"), save_model(model, tmp_path / "b")
    for name in ("model.npz", "model.json", "manifest.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes()


def test_artifact_holds_no_pickles(artifact: Path) -> None:
    with np.load(artifact / "model.npz", allow_pickle=False) as arrays:
        assert all(arrays[name].dtype != object for name in arrays.files)


@LOADERS
def test_tampered_weights_raise_artifact_error(
    artifact: Path, load: Callable[[Path], object]
) -> None:
    data = bytearray((artifact / "model.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (artifact / "model.npz").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"model\.npz"):
        load(artifact)


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


def _rewrite(artifact: Path, name: str, *, data: bytes) -> None:
    """Change one content file and re-sign the manifest, as a careful attacker would."""
    (artifact / name).write_bytes(data)
    files = {n: (artifact / n).read_bytes() for n in ("model.json", "model.npz")}
    manifest = json.loads((artifact / "manifest.json").read_text())
    manifest["files"], manifest["sha256"] = _digest(files)
    (artifact / "manifest.json").write_text(json.dumps(manifest))


def test_re_signed_content_with_unknown_params_is_refused(artifact: Path) -> None:
    meta = json.loads((artifact / "model.json").read_text())
    meta["params"]["surprise"] = 1
    _rewrite(artifact, "model.json", data=json.dumps(meta).encode())
    with pytest.raises(ArtifactError, match="inconsistent"):
        load_model(artifact)


@LOADERS
def test_re_signed_arrays_of_the_wrong_shape_are_refused(
    artifact: Path, load: Callable[[Path], object]
) -> None:
    with np.load(artifact / "model.npz", allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["calibration"] = arrays["calibration"][:, :1]
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    _rewrite(artifact, "model.npz", data=buffer.getvalue())
    with pytest.raises(ArtifactError, match="calibration"):
        load(artifact)


def test_an_artifact_other_than_the_expected_one_is_refused(artifact: Path) -> None:
    sha = load_model(artifact).sha256_
    assert load_model(artifact, expected_sha256=sha).sha256_ == sha
    with pytest.raises(ArtifactError, match="not the expected"):
        load_model(artifact, expected_sha256="0" * 64)


def test_a_file_where_a_directory_should_be_is_an_artifact_error(tmp_path: Path) -> None:
    path = tmp_path / "model"
    path.write_text("not a directory")
    with pytest.raises(ArtifactError):
        load_model(path)
