"""Benchmark explanations of held comments against scoring them, one comment at a time.

    python -m bench.explain [--comments 400] [--repeats 5] [--data-dir ../shared/data]

Held-like comments are the toxic ones of the Civil Comments sample and of Toxic Spans (news
comments at their real lengths). Per comment it times scoring alone (`predict_proba` of one
text) and the explanation of all six attributes as the worker asks for it (`explain_many`
through the service's `ModelScorer`, with the worker's `top_k`): once with every comment met
cold (explained after another comment), once right after scoring that same comment alone,
and once after scoring its batch of 16, the worker's order (`ModelScorer` keeps the last
batch's featurisation for explanations). Prints medians and p99 per repetition; figures
are printed, never asserted.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from classifier import ATTRIBUTES, load_default_model
from service.comments.decisions import EXPLAIN_TOP_K
from service.models.scoring import ModelScorer

SOURCES = ("civil_comments_sample_train.csv.gz", "toxic_spans_train.csv.gz")
WARM_UP = 50
LABELS = (
    "scoring (1 comment)",
    "explanation (6 attributes)",  # each comment met cold, after explaining another
    "explanation after scoring",  # right after scoring the same comment, as the worker does
    "explanation after batch",  # after scoring a batch of BATCH comments, each explained
)
BATCH = 16


def held_like_comments(data_dir: Path, *, n: int, seed: int = 0) -> list[str]:
    """`n` toxic news comments: every toxic one of the Civil Comments sample first, then a
    random draw of Toxic Spans' toxic ones (read from the shared data, never copied)."""
    texts: list[str] = []
    for name in SOURCES:
        with gzip.open(data_dir / name, "rt", encoding="utf-8", newline="") as handle:
            toxic = [row["comment_text"] for row in csv.DictReader(handle) if row["toxic"] == "1"]
        wanted = min(len(toxic), n - len(texts))
        picked = np.random.RandomState(seed).permutation(len(toxic))[:wanted]
        texts.extend(toxic[i] for i in sorted(picked))
    return texts


def _time_each(texts: list[str], call: Callable[[str], object]) -> np.ndarray:
    """Milliseconds `call` takes on each text, one at a time."""
    out = np.empty(len(texts))
    for i, text in enumerate(texts):
        started = time.perf_counter()
        call(text)
        out[i] = time.perf_counter() - started
    return out * 1e3


def _time_after_scoring(
    texts: list[str], score: Callable[[str], object], explain: Callable[[str], object]
) -> np.ndarray:
    """Milliseconds of each explanation made right after scoring the same comment alone,
    the worker's order for a batch of one (the model's tables then hold that comment)."""
    out = np.empty(len(texts))
    for i, text in enumerate(texts):
        score(text)
        started = time.perf_counter()
        explain(text)
        out[i] = time.perf_counter() - started
    return out * 1e3


def _time_after_batch(
    texts: list[str],
    score_batch: Callable[[list[str]], object],
    explain: Callable[[str], object],
) -> np.ndarray:
    """Milliseconds of each explanation made after scoring its batch of `BATCH` comments."""
    out = np.empty(len(texts))
    for first in range(0, len(texts), BATCH):
        score_batch(texts[first : first + BATCH])
        for i in range(first, min(first + BATCH, len(texts))):
            started = time.perf_counter()
            explain(texts[i])
            out[i] = time.perf_counter() - started
    return out * 1e3


def _line(label: str, ms: np.ndarray) -> str:
    median, p99 = np.median(ms), np.percentile(ms, 99)
    return f"{label:<27} median {median:7.3f} ms   p99 {p99:7.3f} ms   mean {ms.mean():7.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comments", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--data-dir", default=os.environ.get("MODERATION_DATA_DIR", "../shared/data")
    )
    args = parser.parse_args()

    scorer = ModelScorer(load_default_model())
    texts = held_like_comments(Path(args.data_dir), n=args.comments)
    lengths = np.array([len(t) for t in texts])
    print(
        f"model {scorer.version}: {len(texts)} held-like comments, "
        f"length median {np.median(lengths):.0f}, max {lengths.max()} chars; "
        f"explaining all {len(ATTRIBUTES)} attributes, top_k={EXPLAIN_TOP_K}"
    )

    def score(text: str) -> object:
        return scorer.predict_proba([text])

    def explain(text: str) -> object:
        return scorer.explain_many(text, ATTRIBUTES, top_k=EXPLAIN_TOP_K)

    for text in texts[:WARM_UP]:  # the normaliser's tables, the allocator
        score(text)
        explain(text)
    figures: dict[str, list[np.ndarray]] = {label: [] for label in LABELS}
    for repeat in range(1, args.repeats + 1):
        figures[LABELS[0]].append(_time_each(texts, score))
        figures[LABELS[1]].append(_time_each(texts, explain))
        figures[LABELS[2]].append(_time_after_scoring(texts, score, explain))
        figures[LABELS[3]].append(_time_after_batch(texts, scorer.predict_proba, explain))
        print(f"repetition {repeat}")
        for label, runs in figures.items():
            print("  " + _line(label, runs[-1]))
    print("all repetitions")
    for label, runs in figures.items():
        print("  " + _line(label, np.concatenate(runs)))
    for label in LABELS[1:]:
        medians = ", ".join(f"{np.median(run):.3f}" for run in figures[label])
        print(f"  medians per repetition, {label}: {medians} ms")


if __name__ == "__main__":
    main()
