"""Benchmark of the default toxicity model: latency, batch cost, size, memory, training time.

Usage: python -m bench.model [--train] [--data-dir DIR]
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from pathlib import Path

import numpy as np

from classifier import load_corpus, load_default_model, train
from classifier.artifact import DEFAULT_MODEL_DIR

N_SINGLE = 2000
BATCH = 1000


def _rss_mb() -> float:
    """Current resident set size (Linux /proc), falling back to the peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", action="store_true", help="also time training on all data")
    parser.add_argument(
        "--data-dir", default=os.environ.get("MODERATION_DATA_DIR", "../shared/data")
    )
    args = parser.parse_args()

    rss_before = _rss_mb()
    started = time.perf_counter()
    model = load_default_model()
    load_seconds = time.perf_counter() - started
    rss_after = _rss_mb()

    texts = load_corpus(Path(args.data_dir) / "jigsaw_test.csv.gz").texts
    single = (texts * (N_SINGLE // len(texts) + 1))[:N_SINGLE]
    model.predict_proba(single[:50])  # warm caches (normaliser table, allocator)
    timings = []
    for text in single:
        t0 = time.perf_counter()
        model.predict_proba([text])
        timings.append(time.perf_counter() - t0)
    timings_ms = np.asarray(timings) * 1e3

    batch_texts = (texts * (2 * BATCH // len(texts) + 1))[: 2 * BATCH]
    per_comment = []
    for start in range(0, len(batch_texts), BATCH):
        chunk = batch_texts[start : start + BATCH]
        t0 = time.perf_counter()
        model.predict_proba(chunk)
        per_comment.append((time.perf_counter() - t0) / len(chunk))
    # What a held comment costs on top: the spans behind three crossed attributes at once.
    explain_ms = []
    for text in single[:500]:
        t0 = time.perf_counter()
        model.explain_many(text, ("toxic", "insult", "obscene"), top_k=3)
        explain_ms.append((time.perf_counter() - t0) * 1e3)
    size_mb = sum(p.stat().st_size for p in DEFAULT_MODEL_DIR.iterdir()) / 1e6

    rows = [
        ("model", model.version_),
        ("artifact size", f"{size_mb:.1f} MB"),
        ("load time", f"{load_seconds * 1e3:.0f} ms"),
        ("RSS before / after load", f"{rss_before:.0f} / {rss_after:.0f} MB"),
        (f"single comment p50 (n={N_SINGLE})", f"{np.percentile(timings_ms, 50):.3f} ms"),
        ("single comment p99", f"{np.percentile(timings_ms, 99):.3f} ms"),
        ("single comment mean", f"{statistics.fmean(timings_ms):.3f} ms"),
        (f"batch of {BATCH}, per comment", f"{min(per_comment) * 1e6:.1f} µs (best of 2)"),
        (
            "explain 3 attributes p50 / p99",
            f"{np.percentile(explain_ms, 50):.3f} / {np.percentile(explain_ms, 99):.3f} ms",
        ),
        ("mean comment length", f"{statistics.fmean(len(t) for t in single):.0f} chars"),
    ]
    if args.train:
        t0 = time.perf_counter()
        _, report = train(args.data_dir)
        rows.append(("training, all data (wall)", f"{time.perf_counter() - t0:.1f} s"))
        rows.append(("training, fit only", f"{report['training_seconds']:.1f} s"))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
