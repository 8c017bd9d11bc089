"""What a site's word lists cost a comment: matching with 10,000 entries a list against none,
beside the model's own cost for the same comment.

    python -m bench.rules [--entries 10000] [--repeat 5]

The 750 real news comments of the Civil Comments sample (../shared/data); the lists are
10,000 words and two-word phrases drawn from those comments' own vocabulary, a tenth of them
wildcards: a worst case, where nearly every comment holds entries and every match is located
in the original text. Then lists of the same shape the comments never hold, as a real banned
list is for most comments. Both the banned and the suspect list are searched, as deciding does.
Figures are medians of `repeat` passes over the sample; printed, never asserted.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import time

from bench.pipeline import DATA, load_texts
from service.models.scoring import load_scorer
from service.rules.word_lists import WordList

__all__ = ["main", "rare_entries"]


def _entries(texts: list[str], n: int, seed: int) -> list[str]:
    words = sorted({w.lower() for t in texts for w in re.findall(r"[a-zA-Z]{4,}", t)})
    rng = random.Random(seed)
    picked = []
    for i in range(n):
        word = rng.choice(words)
        if i % 10 == 0:
            picked.append(word[:5] + "*")
        elif i % 3 == 0:
            picked.append(f"{word} {rng.choice(words)}")
        else:
            picked.append(word)
    return picked


def rare_entries(texts: list[str], n: int, seed: int) -> list[str]:
    """Entries of a real list's shape that news comments almost never hold (words backwards)."""
    return [
        e[::-1] if not e.endswith("*") else e[:-1][::-1] + "*" for e in _entries(texts, n, seed)
    ]


def _per_comment(work: list[str], find: object, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        began = time.perf_counter()
        for text in work:
            find(text)  # type: ignore[operator]
        runs.append((time.perf_counter() - began) / len(work) * 1e6)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    texts = load_texts(DATA)
    banned = WordList(_entries(texts, args.entries, 1))
    suspect = WordList(_entries(texts, args.entries, 2))
    empty = WordList([])
    full = _per_comment(texts, lambda t: (banned.find(t), suspect.find(t)), args.repeat)
    none = _per_comment(texts, lambda t: (empty.find(t), empty.find(t)), args.repeat)
    hits = sum(bool(banned.find(t)) for t in texts)
    # Lists of the same shape that the comments never hold (each word spelt backwards), as a
    # real banned list is: most comments match nothing.
    rare = [WordList(rare_entries(texts, args.entries, s)) for s in (3, 4)]
    misses = _per_comment(texts, lambda t: (rare[0].find(t), rare[1].find(t)), args.repeat)
    scorer = load_scorer(None)
    model = _per_comment(texts, lambda t: scorer.predict_proba([t]), args.repeat)
    print(
        f"{len(texts)} news comments, two lists of {args.entries} entries "
        f"({hits} comments hold a banned entry)\n"
        f"lists that match nearly every comment: {full:.1f} us a comment; lists that match "
        f"{sum(bool(rare[0].find(t)) for t in texts)} of them: {misses:.1f} us; "
        f"no lists: {none:.2f} us; "
        f"the model alone: {model:.0f} us a comment scored one at a time"
    )


if __name__ == "__main__":
    main()
