"""Saving and loading models as arrays + JSON (never pickle), identified by sha256."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from classifier.attributes import ATTRIBUTES
from classifier.card import render_card
from classifier.features import CharNgramFeaturizer, WordNgramFeaturizer
from classifier.fitted import FittedToxicity

if TYPE_CHECKING:  # imported where needed: it brings scikit-learn, which scoring never needs
    from classifier.model import ToxicityModel

__all__ = [
    "ArtifactError",
    "artifact_files",
    "artifact_identity",
    "load_default_fitted",
    "load_default_model",
    "load_fitted",
    "load_model",
    "save_model",
]

FORMAT = "moderation-tfidf-lr/1"
ARRAYS_FILE = "model.npz"
META_FILE = "model.json"
MANIFEST_FILE = "manifest.json"
CARD_FILE = "MODEL_CARD.md"
DEFAULT_MODEL_DIR = Path(__file__).parent / "default_model"
_ARRAYS = ("word_idf", "char_codes", "char_idf", "coef", "intercept", "calibration")


class ArtifactError(Exception):
    """A model artifact is missing, truncated, tampered with or of an unknown format."""


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    # Written entry by entry with a fixed timestamp so equal models give equal bytes.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            payload = io.BytesIO()
            np.lib.format.write_array(payload, np.ascontiguousarray(array), allow_pickle=False)
            archive.writestr(info, payload.getvalue())
    return buffer.getvalue()


def _digest(files: dict[str, bytes]) -> tuple[dict[str, str], str]:
    per_file = {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())}
    summary = "".join(f"{name}:{sha}\n" for name, sha in per_file.items())
    return per_file, hashlib.sha256(summary.encode()).hexdigest()


def artifact_files(model: ToxicityModel) -> dict[str, bytes]:
    """The content files of `model`'s artifact (their sha256 identifies the model)."""
    from classifier.model import json_params

    arrays = {
        "word_idf": model.word_.idf_,
        "char_codes": model.char_.codes_,
        "char_idf": model.char_.idf_,
        "coef": model.coef_,
        "intercept": model.intercept_,
        "calibration": model.calibration_,
    }
    meta = {
        "format": FORMAT,
        "attributes": list(ATTRIBUTES),
        "params": json_params(model),
        "word_vocabulary": model.word_.vocabulary_,
        "char_alphabet": model.char_.alphabet_,
        "n_train_rows": model.n_train_rows_.tolist(),
        "n_calibration_rows": model.n_calibration_rows_,
        "card": model.card_,
    }
    meta_bytes = json.dumps(meta, ensure_ascii=False, sort_keys=True).encode("utf-8")
    return {ARRAYS_FILE: _npz_bytes(arrays), META_FILE: meta_bytes}


def stamp(model: ToxicityModel, files: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """Set `model.sha256_` and `model.version_` from its content; return the content files."""
    files = files if files is not None else artifact_files(model)
    _, model.sha256_ = _digest(files)
    model.version_ = _version(model.sha256_)
    return files


def save_model(model: ToxicityModel, directory: str | Path) -> Path:
    """Write `model` to `directory` (npz + JSON + manifest + MODEL_CARD.md); return the path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = stamp(model)
    per_file, overall = _digest(files)
    for name, data in files.items():
        (directory / name).write_bytes(data)
    manifest = {"format": FORMAT, "files": per_file, "sha256": overall}
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    (directory / CARD_FILE).write_text(
        render_card(model.card_, version=model.version_, sha256=model.sha256_)
    )
    return directory


def _read_verified(directory: Path) -> tuple[dict[str, bytes], str]:
    try:
        manifest = json.loads((directory / MANIFEST_FILE).read_text())
        expected: dict[str, str] = manifest["files"]
        recorded = manifest["sha256"]
    except OSError as exc:  # missing, not a directory, unreadable
        raise ArtifactError(f"no readable {MANIFEST_FILE} in {directory}: {exc}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"unreadable {MANIFEST_FILE} in {directory}: {exc}") from exc
    if manifest.get("format") != FORMAT or set(expected) != {ARRAYS_FILE, META_FILE}:
        raise ArtifactError(f"{directory}: unknown artifact format {manifest.get('format')!r}")
    files: dict[str, bytes] = {}
    for name, sha in expected.items():
        try:
            data = (directory / name).read_bytes()
        except OSError as exc:
            raise ArtifactError(f"{directory}: missing or unreadable {name}") from exc
        if hashlib.sha256(data).hexdigest() != sha:
            raise ArtifactError(f"{directory}: {name} does not match its sha256 in the manifest")
        files[name] = data
    if _digest(files)[1] != recorded:
        raise ArtifactError(f"{directory}: manifest sha256 does not match its files")
    return files, recorded


def load_model(directory: str | Path, *, expected_sha256: str | None = None) -> ToxicityModel:
    """Load and verify an artifact written by `save_model`; raise ArtifactError if unsound.

    `expected_sha256` (e.g. from a registry) guards against an artifact whose files and
    manifest were changed together: the manifest alone only proves they agree.
    """
    from classifier.model import ToxicityModel

    known = set(ToxicityModel().get_params())
    model = _load(Path(directory), expected_sha256, lambda params: _estimator(params, known))
    return cast("ToxicityModel", model)


def load_fitted(directory: str | Path, *, expected_sha256: str | None = None) -> FittedToxicity:
    """`load_model` for a process that only scores: the fitted state, without the estimator
    (and without importing scikit-learn). The same integrity checks (manifest, sha256, array
    kinds and shapes) and the same scores; only the parameters it reads are required, where
    `load_model` also refuses parameters the estimator does not know."""
    return _load(Path(directory), expected_sha256, lambda params: FittedToxicity())


def _estimator(params: dict[str, Any], known: set[str]) -> FittedToxicity:
    from classifier.model import ToxicityModel

    if set(params) != known:
        raise ValueError(f"parameters {sorted(set(params) ^ known)} are unknown or missing")
    return ToxicityModel(**params)


def _load(
    directory: Path,
    expected_sha256: str | None,
    new: Callable[[dict[str, Any]], FittedToxicity],
) -> FittedToxicity:
    files, sha = _read_verified(directory)
    if expected_sha256 is not None and sha != expected_sha256:
        raise ArtifactError(
            f"{directory}: sha256 {sha[:12]} is not the expected {expected_sha256[:12]}"
        )
    try:
        meta: dict[str, Any] = json.loads(files[META_FILE].decode("utf-8"))
        with np.load(io.BytesIO(files[ARRAYS_FILE]), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in _ARRAYS}
    except (ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:
        raise ArtifactError(f"{directory}: cannot read artifact content: {exc}") from exc
    if meta.get("format") != FORMAT or tuple(meta.get("attributes", ())) != ATTRIBUTES:
        raise ArtifactError(f"{directory}: artifact is for another format or label set")
    try:
        model = _build(meta, arrays, new)
    except (KeyError, TypeError, ValueError) as exc:
        # Unknown or missing parameters, arrays of the wrong kind: never a half-built model.
        raise ArtifactError(f"{directory}: inconsistent artifact content: {exc!r}") from exc
    model.sha256_ = sha
    model.version_ = _version(sha)
    return model


def _version(sha256: str) -> str:
    return f"tfidf-lr-{sha256[:12]}"


def artifact_identity(directory: str | Path) -> tuple[str, str]:
    """(version, sha256) of an artifact folder, from its manifest, without loading the model."""
    try:
        sha = str(json.loads((Path(directory) / MANIFEST_FILE).read_text())["sha256"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{directory}: no readable manifest: {exc}") from exc
    return _version(sha), sha


def _build(
    meta: dict[str, Any],
    arrays: dict[str, np.ndarray],
    new: Callable[[dict[str, Any]], FittedToxicity],
) -> FittedToxicity:
    params = dict(meta["params"])
    for key in ("word_ngram_range", "char_ngram_range"):
        params[key] = tuple(params[key])
    for name, array in arrays.items():
        expected_kind = "i" if name == "char_codes" else "f"
        if array.dtype.kind != expected_kind:
            raise ValueError(f"array {name} has dtype {array.dtype}")
    model = new(params)
    model.word_ = WordNgramFeaturizer(
        ngram_range=params["word_ngram_range"],
        max_features=params["word_max_features"],
        min_count=params["min_count"],
    ).set_vocabulary(meta["word_vocabulary"], arrays["word_idf"])
    model.char_ = CharNgramFeaturizer(
        ngram_range=params["char_ngram_range"],
        max_features=params["char_max_features"],
        min_count=params["min_count"],
    ).set_vocabulary(meta["char_alphabet"], arrays["char_codes"], idf=arrays["char_idf"])
    model.coef_ = arrays["coef"]
    model.intercept_ = arrays["intercept"]
    model.calibration_ = arrays["calibration"]
    model.n_train_rows_ = np.asarray(meta["n_train_rows"], dtype=np.int64)
    model.n_calibration_rows_ = int(meta["n_calibration_rows"])
    model.card_ = meta["card"]
    n_attributes = len(ATTRIBUTES)
    shapes = {
        "word_idf": (arrays["word_idf"].shape, (len(model.word_.vocabulary_),)),
        "char_idf": (arrays["char_idf"].shape, (len(model.char_.codes_),)),
        "coef": (
            model.coef_.shape,
            (len(model.word_.vocabulary_) + len(model.char_.codes_), n_attributes),
        ),
        "intercept": (model.intercept_.shape, (n_attributes,)),
        "calibration": (model.calibration_.shape, (n_attributes, 2)),
    }
    for name, (actual, expected) in shapes.items():
        if actual != expected:
            raise ValueError(f"array {name} has shape {actual}, expected {expected}")
    return model


def load_default_model() -> ToxicityModel:
    """Load the model shipped in `classifier/default_model/` (callers should cache it)."""
    return load_model(DEFAULT_MODEL_DIR)


def load_default_fitted() -> FittedToxicity:
    """`load_fitted` of the shipped model."""
    return load_fitted(DEFAULT_MODEL_DIR)
