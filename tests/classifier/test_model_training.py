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

from classifier import ATTRIBUTES, DataError, load_corpus, load_model, train
from classifier.fairness import identity_augmentation
from classifier.training import (
    EXPERIMENTS,
    EXPERIMENTS_FILE,
    IDENTITY_AUGMENTATION_WEIGHT,
    TRAINING_MIX,
    Source,
    load_experiments,
    load_training_data,
)
from service.cli.model import register

SMALL = {"word_max_features": 2000, "char_max_features": 3000, "min_count": 1, "n_jobs": 1}


def _write(path: Path, header: list[str], *, rows: list[list[str]]) -> None:
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
        rows=rows,
    )
    six = [[f"x{i}", t, *map(_cell, y)] for i, (t, y) in enumerate(zip(texts, labels, strict=True))]
    _write(root / "jigsaw_lowercase_train.csv.gz", ["id", "comment_text", *ATTRIBUTES], rows=six)
    _write(root / "jigsaw_test.csv.gz", ["id", "comment_text", *ATTRIBUTES], rows=six)
    toxic_only = [
        [f"t{i}", t, _cell(y[0])] for i, (t, y) in enumerate(zip(texts, labels, strict=True))
    ]
    _write(root / "toxic_spans_train.csv.gz", ["id", "comment_text", "toxic"], rows=toxic_only)
    _write(
        root / "civil_comments_sample_train.csv.gz",
        ["id", "comment_text", "toxic"],
        rows=toxic_only,
    )
    _write(root / "wiki_cat_train.csv.gz", ["id", "comment_text", "toxic"], rows=toxic_only)
    _write(root / "hatexplain_train.csv.gz", ["id", "comment_text", "toxic"], rows=toxic_only)
    _write(root / "olid_train.csv.gz", ["id", "comment_text", "offensive"], rows=toxic_only)
    # Stormfront leaves "relation" and "idk/skip" sentences unlabelled.
    hate = [[i, t, "" if n % 7 == 0 else y] for n, (i, t, y) in enumerate(toxic_only)]
    _write(root / "stormfront_train.csv.gz", ["id", "comment_text", "hate"], rows=hate)
    return root


def test_train_reports_metrics_and_fills_the_card(data_dir: Path) -> None:
    stages: list[float] = []
    model, report = train(data_dir, params=SMALL, progress=lambda _s, f: stages.append(f))
    assert stages[-1] == 1.0 and stages == sorted(stages)
    card = model.card_
    assert set(card["recommended_thresholds"]) == set(ATTRIBUTES)
    assert {row["file"] for row in card["data"]} >= {"jigsaw_train.csv.gz", "jigsaw_test.csv.gz"}
    assert (
        card["command"]
        == "moderation train --data-dir ../shared/data --out classifier/default_model"
    )
    toxic = report["metrics"]["jigsaw_test (toxic; balanced)"][0]
    assert toxic["roc_auc"] > 0.9
    assert model.version_.startswith("tfidf-lr-") and len(model.sha256_) == 64


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
    card = (out / "MODEL_CARD.md").read_text()
    assert card.startswith("# Model card — tfidf-lr-")
    assert "## What was tried" in card and "(chosen)" in card
    assert load_model(out).card_["recommended_thresholds"]


def test_training_data_keeps_holdouts_out_and_maps_other_label_columns(data_dir: Path) -> None:
    data = load_training_data(data_dir)
    assert set(data.holdouts) == {"toxic_spans_train", "civil_comments_sample_train"}
    spans = data.holdouts["toxic_spans_train"]
    assert len(spans) == int(len(load_corpus(data_dir / "toxic_spans_train.csv.gz")) * 0.1)
    # Every row in training carries some label (Stormfront's unlabelled sentences are dropped)
    # and the off-domain corpora label `toxic` only.
    assert not np.isnan(data.labels).all(axis=1).any()
    assert len(data.texts) == len(data.labels) == len(data.weights)
    augmented = np.zeros(len(data.texts), dtype=bool)
    augmented[-len(identity_augmentation()[0]) :] = True
    assert set(np.unique(data.weights[~augmented])) == {0.1, 0.3, 1.0}
    assert (data.weights[augmented] >= IDENTITY_AUGMENTATION_WEIGHT).all()
    assert (data.labels[augmented] == 0).all(), "identity mentions are added as clean rows"
    off_domain = data.weights < 1.0
    assert np.isnan(data.labels[off_domain][:, 1:]).all()
    assert not np.isnan(data.labels[off_domain][:, 0]).any()  # e.g. OLID's `offensive`
    unaugmented = load_training_data(data_dir, augmentation_weight=0)
    assert len(unaugmented.texts) == len(data.texts) - int(augmented.sum())
    olid = next(row for row in data.data_rows if row["file"] == "olid_train.csv.gz")
    assert olid["attributes"] == "toxic=offensive"


def test_a_corpus_keeps_its_holdout_whatever_else_is_in_the_mix(data_dir: Path) -> None:
    smaller = {k: v for k, v in TRAINING_MIX.items() if k in ("jigsaw_train", "toxic_spans_train")}
    full, reduced = load_training_data(data_dir), load_training_data(data_dir, mix=smaller)
    assert full.holdouts["toxic_spans_train"].ids == reduced.holdouts["toxic_spans_train"].ids
    assert full.evaluation.ids == reduced.evaluation.ids
    with pytest.raises(ValueError, match="jigsaw_train"):
        load_training_data(data_dir, mix={"toxic_spans_train": TRAINING_MIX["toxic_spans_train"]})


def test_a_weight_column_multiplies_its_corpus_weight_row_by_row(
    data_dir: Path, tmp_path: Path
) -> None:
    for path in data_dir.iterdir():
        (tmp_path / path.name).symlink_to(path)
    header = ["id", "comment_text", *ATTRIBUTES, "weight"]
    rows = [["a", "you fool", "1", "", "", "", "", "", "2.5"], ["b", "fine", *"000000", "1"]]
    _write(tmp_path / "site.csv.gz", header, rows=rows)
    mix = {"jigsaw_train": TRAINING_MIX["jigsaw_train"]}
    data = load_training_data(
        tmp_path, mix={**mix, "site": Source(ATTRIBUTES, 4.0, row_weights=True)}
    )
    where = {t: w for t, w in zip(data.texts, data.weights, strict=True)}
    assert where["you fool"] == 10.0 and where["fine"] == 4.0
    for bad in ("0", "-1", "lots", "nan"):
        _write(tmp_path / "site.csv.gz", header, rows=[[*rows[0][:-1], bad]])
        with pytest.raises(DataError, match="weight"):
            load_training_data(
                tmp_path, mix={**mix, "site": Source(ATTRIBUTES, 1, row_weights=True)}
            )
    _write(tmp_path / "site.csv.gz", header[:-1], rows=[rows[0][:-1]])
    with pytest.raises(DataError, match="weight"):
        load_training_data(tmp_path, mix={**mix, "site": Source(ATTRIBUTES, 1, row_weights=True)})


def test_the_experiments_table_is_read_from_its_data_file(tmp_path: Path) -> None:
    assert load_experiments() == EXPERIMENTS and len(EXPERIMENTS) > 1
    keys = list(EXPERIMENTS[0])
    assert keys[0] == "variant" and all(list(row) == keys for row in EXPERIMENTS)
    assert all(isinstance(v, float) for row in EXPERIMENTS for v in list(row.values())[1:])
    assert EXPERIMENTS[-1]["variant"].endswith("(chosen)")
    broken = tmp_path / "experiments.toml"
    broken.write_text(EXPERIMENTS_FILE.read_text() + '\n[[experiment]]\nvariant = "x"\n')
    with pytest.raises(ValueError, match="keys"):
        load_experiments(broken)
