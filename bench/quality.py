"""Benchmark of model quality: AUCs against a plain baseline, generalisation, ECE, explanations.

Usage: python -m bench.quality [--data-dir DIR] [--model DIR] [--quick]
Prints tables; asserts nothing. Held-out rows are the ones `train()` keeps out of training
(same files, same random_state), so the default model is measured on rows it never saw.
--quick trains the comparison models for `toxic` only, with 2 instead of 3 folds, and holds
out only the news corpora in section (c).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from classifier import ATTRIBUTES, ToxicityModel, load_corpus, load_default_model, load_model
from classifier.evaluation import expected_calibration_error
from classifier.normalize import normalize
from classifier.training import EXPERIMENTS, TRAINING_MIX, Source, load_training_data

TOXIC = ATTRIBUTES.index("toxic")
# The plain reference of issue 3: word 1-2 + char_wb 2-5 TF-IDF, one logistic regression.
BASELINE = {"nb_scaling": False, "separate_word_char": False, "C": 4.0}
NEWS = ("toxic_spans_train", "civil_comments_sample_train")
OTHERS: dict[str, Source] = {
    "olid_train": Source(("toxic",), 0.0, columns={"toxic": "offensive"}),
    "hatexplain_train": Source(("toxic",), 0.0),
    "stormfront_train": Source(("toxic",), 0.0, columns={"toxic": "hate"}),
    "wiki_cat_train": Source(("toxic",), 0.0),
}
WORD = re.compile(r"(?u)\b\w+\b")


def _print_table(title: str, rows: Sequence[dict[str, Any]]) -> None:
    print(f"\n## {title}\n")
    if not rows:
        print("(none)")
        return
    headers = list(rows[0])
    cells = [[_fmt(row.get(h)) for h in headers] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.4f}"
    return "—" if value is None else str(value)


def _aucs(target: np.ndarray, score: np.ndarray) -> dict[str, Any]:
    known = ~np.isnan(target)
    target, score = target[known], score[known]
    both = 0 < target.sum() < len(target)
    return {
        "n": len(target),
        "pos": int(target.sum()),
        "roc_auc": float(roc_auc_score(target, score)) if both else None,
        "pr_auc": float(average_precision_score(target, score)) if both else None,
    }


def _only_toxic(labels: np.ndarray) -> np.ndarray:
    out = np.full_like(labels, np.nan)
    out[:, TOXIC] = labels[:, TOXIC]
    return out


def _fit(
    params: dict[str, Any],
    texts: list[str],
    labels: np.ndarray,
    *,
    weights: np.ndarray | None = None,
    calibration: tuple[list[str], np.ndarray] | None = None,
    toxic_only: bool = False,
) -> ToxicityModel:
    if toxic_only:  # attributes without labels fit as constants, in no time
        labels = _only_toxic(labels)
        calibration = calibration and (calibration[0], _only_toxic(calibration[1]))
    model = ToxicityModel(**params)
    return model.fit(
        texts,
        labels,
        sample_weight=weights,
        calibration_texts=calibration[0] if calibration else None,
        calibration_labels=calibration[1] if calibration else None,
    )


def _model_params(model: ToxicityModel) -> dict[str, Any]:
    params = model.get_params()
    for key in ("word_ngram_range", "char_ngram_range"):
        params[key] = tuple(params[key])
    return params


def section_test(model: ToxicityModel, data: Any, data_dir: Path, quick: bool) -> None:
    """(a) toxic on jigsaw_test: the model vs the plain baseline trained on jigsaw_train."""
    jigsaw = load_training_data(data_dir, mix={"jigsaw_train": TRAINING_MIX["jigsaw_train"]})
    started = time.perf_counter()
    baseline = _fit(
        {**_model_params(model), **BASELINE},
        jigsaw.texts,
        jigsaw.labels,
        calibration=(jigsaw.calibration.texts, jigsaw.calibration.labels),
        toxic_only=quick,
    )
    seconds = time.perf_counter() - started
    rows = []
    for name, m in (("model", model), ("plain TF-IDF LR, jigsaw_train only", baseline)):
        proba = m.predict_proba(data.test.texts)[:, TOXIC]
        rows.append({"model": name, **_aucs(data.test.labels[:, TOXIC], proba)})
    _print_table(f"(a) toxic on jigsaw_test (baseline fitted in {seconds:.0f} s)", rows)


def section_subtypes(model: ToxicityModel, data_dir: Path, quick: bool) -> None:
    """(b) every attribute, out-of-fold on the fully labelled jigsaw_train rows."""
    corpus = load_corpus(data_dir / "jigsaw_train.csv.gz")
    full = np.flatnonzero(~np.isnan(corpus.labels).any(axis=1))
    folds = 2 if quick else 3
    order = np.random.RandomState(0).permutation(full)
    ours = {**_model_params(model), "n_jobs": 2}
    configs = {"ours": ours, "plain": {**ours, **BASELINE}}
    oof = {name: np.zeros((len(order), len(ATTRIBUTES))) for name in configs}
    parts = np.array_split(np.arange(len(order)), folds)
    started = time.perf_counter()
    for held in parts:
        train_idx = np.setdiff1d(np.arange(len(order)), held)
        train = corpus.subset(order[train_idx])
        test = corpus.subset(order[held])
        for name, params in configs.items():
            fitted = _fit(params, train.texts, train.labels)
            oof[name][held] = fitted.decision_function(test.texts)
    labels = corpus.labels[order]
    rows = []
    for j, attribute in enumerate(ATTRIBUTES):
        row: dict[str, Any] = {"attribute": attribute, "n": len(order)}
        row["pos"] = int(labels[:, j].sum())
        for name in configs:
            metrics = _aucs(labels[:, j], oof[name][:, j])
            row[f"{name}_roc"] = metrics["roc_auc"]
            row[f"{name}_pr"] = metrics["pr_auc"]
        rows.append(row)
    seconds = time.perf_counter() - started
    title = f"(b) {folds}-fold out-of-fold, fully labelled jigsaw_train rows ({seconds:.0f} s)"
    _print_table(title, rows)


def section_generalisation(model: ToxicityModel, data: Any, data_dir: Path, quick: bool) -> None:
    """(c) toxic on each corpus held out of training in turn."""
    params = _model_params(model)
    rows = []
    for name, source in {**{n: TRAINING_MIX[n] for n in NEWS}, **OTHERS}.items():
        if quick and name not in NEWS and name in TRAINING_MIX:
            continue
        path = data_dir / f"{name}.csv.gz"
        corpus = load_corpus(path, attributes=("toxic",), label_columns=source.columns)
        target = corpus.labels[:, TOXIC]
        if name in data.holdouts:
            held = data.holdouts[name]
            proba = model.predict_proba(held.texts)[:, TOXIC]
            rows.append(
                {
                    "corpus": name,
                    "rows": "its held-out slice",
                    "trained_without_it": "no",
                    **_aucs(held.labels[:, TOXIC], proba),
                }
            )
        if name in TRAINING_MIX:
            mix = {k: v for k, v in TRAINING_MIX.items() if k != name}
            rest = load_training_data(data_dir, mix=mix)
            fitted = _fit(
                params,
                rest.texts,
                rest.labels,
                weights=rest.weights,
                calibration=(rest.calibration.texts, rest.calibration.labels),
                toxic_only=True,
            )
        else:
            fitted = model
        proba = fitted.predict_proba(corpus.texts)[:, TOXIC]
        rows.append(
            {"corpus": name, "rows": "all", "trained_without_it": "yes", **_aucs(target, proba)}
        )
    _print_table("(c) toxic on corpora held out of training (leave-one-corpus-out)", rows)


def section_calibration(model: ToxicityModel, data: Any) -> None:
    """(d) expected calibration error of toxic (10 equal-width bins)."""
    rows = []
    sets = {
        "jigsaw_train natural-prevalence holdout": data.evaluation,
        "jigsaw_test (balanced, 48% toxic)": data.test,
    }
    for name, corpus in {**sets, **{f"{k} holdout": v for k, v in data.holdouts.items()}}.items():
        target = corpus.labels[:, TOXIC]
        known = ~np.isnan(target)
        proba = model.predict_proba(corpus.texts)[:, TOXIC]
        rows.append(
            {
                "rows": name,
                "n": int(known.sum()),
                "observed": float(target[known].mean()),
                "predicted": float(proba[known].mean()),
                "ece": expected_calibration_error(target[known], proba[known]),
            }
        )
    _print_table("(d) calibration of toxic (target: ECE <= 0.03 at natural prevalence)", rows)


def _human_tokens(text: str, spans: list[list[int]]) -> tuple[list[tuple[int, int]], set[int]]:
    """Word tokens of `text` (original offsets) and the indices of those inside human spans."""
    marked = np.zeros(len(text) + 1, dtype=bool)
    for start, end in spans:
        marked[start:end] = True
    normalized, offsets = normalize(text)
    tokens = []
    for match in WORD.finditer(normalized):
        tokens.append((int(offsets[match.start()]), int(offsets[match.end() - 1]) + 1))
    inside = {i for i, (a, b) in enumerate(tokens) if marked[a:b].mean() >= 0.5}
    return tokens, inside


def section_explanations(model: ToxicityModel, data: Any, data_dir: Path) -> None:
    """(e) explanations against human toxic spans on held-out Toxic Spans rows."""
    held = data.holdouts.get("toxic_spans_train")
    if held is None:
        print("\n(e) skipped: the training mix holds out no toxic_spans_train rows")
        return
    corpus = load_corpus(
        data_dir / "toxic_spans_train.csv.gz", attributes=("toxic",), keep_columns=("spans",)
    )
    spans_of = dict(zip(corpus.ids, corpus.columns["spans"], strict=True))
    hits, f1s, scored = [], [], 0
    for text, row_id in zip(held.texts, held.ids, strict=True):
        spans = json.loads(spans_of[row_id] or "[]")
        if not spans:
            continue
        tokens, inside = _human_tokens(text, spans)
        if not inside:
            continue
        scored += 1
        explained = model.explain(text, "toxic", top_k=len(inside))
        if not explained:
            hits.append(0.0)
            f1s.append(0.0)
            continue
        marked = np.zeros(len(text) + 1, dtype=bool)
        for start, end in spans:
            marked[start:end] = True
        top = explained[0]
        hits.append(float(marked[top.start : top.end].mean() >= 0.5))
        index = {token: i for i, token in enumerate(tokens)}
        predicted = {index[(s.start, s.end)] for s in explained if (s.start, s.end) in index}
        overlap = len(predicted & inside)
        precision = overlap / len(predicted) if predicted else 0.0
        recall = overlap / len(inside)
        f1s.append(2 * precision * recall / (precision + recall) if overlap else 0.0)
    rows = [
        {
            "rows (held-out, non-empty majority span)": scored,
            "top span inside a human span": float(np.mean(hits)) if hits else None,
            "top-k token F1 (k = human tokens)": float(np.mean(f1s)) if f1s else None,
        }
    ]
    _print_table("(e) explanations vs human toxic spans (inside = >= half its chars)", rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--data-dir", default=os.environ.get("MODERATION_DATA_DIR", "../shared/data")
    )
    parser.add_argument("--model", default=None, help="artifact directory (default: shipped)")
    parser.add_argument("--quick", action="store_true", help="a few minutes instead of ~15")
    args = parser.parse_args()
    data_dir = Path(args.data_dir)
    model = load_model(args.model) if args.model else load_default_model()
    started = time.perf_counter()
    print(f"# Quality of {model.version_} ({'quick' if args.quick else 'full'} run)")
    print(f"model: {model.card_.get('model', '?')}")
    data = load_training_data(data_dir)
    section_test(model, data, data_dir, args.quick)
    section_calibration(model, data)
    section_explanations(model, data, data_dir)
    section_generalisation(model, data, data_dir, args.quick)
    section_subtypes(model, data_dir, args.quick)
    _print_table(
        "(f) what was tried (toxic only; held-out rows as in classifier/training.py)",
        list(EXPERIMENTS),
    )
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
