"""Training end to end on a miniature copy of the shared data folder."""

from __future__ import annotations

import csv
import gzip
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from classifier import ATTRIBUTES, DataError, load_model, train
from service.model_cli import register

SMALL = {"word_max_features": 2000, "char_max_features": 3000, "min_count": 1, "n_jobs": 1}


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def _cell(value: float) -> str:
    return "" if value != value else str(int(value))  # NaN -> empty cell


@pytest.fixture(scope="module")
def data_dir(
    tmp_path_factory: pytest.TempPathFactory,
    make_corpus: Callable[[], tuple[list[str], np.ndarray]],
) -> Path:
    root = tmp_path_factory.mktemp("data")
    texts, labels = make_corpus()
    labels[:, ATTRIBUTES.index("threat")] = labels[:, 0] * 0  # fully labelled rows
    rows = [
        [f"j{i}", t, *map(_cell, y), "kk", "1" if i % 2 else "0"]
        for i, (t, y) in enumerate(zip(texts * 2, list(labels) * 2, strict=True))
    ]
    _write(
        root / "jigsaw_train.csv.gz",
        ["id", "comment_text", *ATTRIBUTES, "source", "natural_sample"],
        rows,
    )
    six = [[f"x{i}", t, *map(_cell, y)] for i, (t, y) in enumerate(zip(texts, labels, strict=True))]
    _write(root / "jigsaw_lowercase_train.csv.gz", ["id", "comment_text", *ATTRIBUTES], six)
    _write(root / "jigsaw_test.csv.gz", ["id", "comment_text", *ATTRIBUTES], six)
    toxic_only = [
        [f"t{i}", t, _cell(y[0])] for i, (t, y) in enumerate(zip(texts, labels, strict=True))
    ]
    _write(root / "toxic_spans_train.csv.gz", ["id", "comment_text", "toxic"], toxic_only)
    _write(root / "civil_comments_sample_train.csv.gz", ["id", "comment_text", "toxic"], toxic_only)
    return root


def test_train_reports_metrics_and_fills_the_card(data_dir: Path) -> None:
    stages: list[float] = []
    model, report = train(data_dir, params=SMALL, progress=lambda _s, f: stages.append(f))
    assert stages[-1] == 1.0 and stages == sorted(stages)
    card = model.card
    assert set(card["recommended_thresholds"]) == set(ATTRIBUTES)
    assert {row["file"] for row in card["data"]} >= {"jigsaw_train.csv.gz", "jigsaw_test.csv.gz"}
    assert (
        card["command"]
        == "moderation train --data-dir ../shared/data --out classifier/default_model"
    )
    toxic = report["metrics"]["jigsaw_test (toxic; balanced)"][0]
    assert toxic["roc_auc"] > 0.9
    assert model.version.startswith("tfidf-lr-") and len(model.sha256) == 64


def test_train_refuses_a_missing_data_dir(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        train(tmp_path / "absent")


def test_train_command_writes_artifact_and_card(data_dir: Path, tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    out = tmp_path / "model"
    result = CliRunner().invoke(app, ["train", "--data-dir", str(data_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "roc_auc" in result.output
    assert (out / "MODEL_CARD.md").read_text().startswith("# Model card — tfidf-lr-")
    assert load_model(out).card["recommended_thresholds"]
