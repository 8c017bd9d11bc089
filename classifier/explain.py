"""Explanations: the word spans of a comment whose n-grams pushed one attribute's score up."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from classifier.features import WORD_PATTERN, CharNgramFeaturizer, WordNgramFeaturizer
from classifier.normalize import normalize

__all__ = ["Span", "explain_text"]


@dataclass(frozen=True)
class Span:
    """A piece of the original comment: `text == original[start:end]`, with its contribution."""

    text: str
    start: int
    end: int
    weight: float


def _row_values(row: sp.csr_matrix) -> dict[int, float]:
    return dict(zip(row.indices.tolist(), row.data.tolist(), strict=True))


def explain_text(
    text: str,
    *,
    word: WordNgramFeaturizer,
    char: CharNgramFeaturizer,
    word_weights: np.ndarray,
    char_weights: np.ndarray,
    top_k: int = 5,
) -> list[Span]:
    """Spread each n-gram's contribution (tf-idf value x weight) over the word tokens it covers.

    Word n-grams share their contribution equally among their tokens; character n-grams among
    the tokens they overlap (a char n-gram lives inside one whitespace-separated word, which
    may hold several tokens, e.g. "don't"). Returns the `top_k` tokens with a positive total,
    largest first, with offsets into the original `text`.
    """
    normalized, offsets = normalize(text)
    matches = list(WORD_PATTERN.finditer(normalized))
    if not matches or top_k <= 0:
        return []
    starts = np.fromiter((m.start() for m in matches), dtype=np.int64, count=len(matches))
    ends = np.fromiter((m.end() for m in matches), dtype=np.int64, count=len(matches))
    scores = np.zeros(len(matches))

    tokens = [m.group() for m in matches]
    word_values = _row_values(word.transform([normalized]))
    occurrences: dict[int, list[tuple[int, int]]] = defaultdict(list)
    low, high = word.ngram_range
    for n in range(low, high + 1):
        for i in range(len(tokens) - n + 1):
            feature = word.index_.get(" ".join(tokens[i : i + n]))
            if feature is not None:
                occurrences[feature].append((i, i + n))
    for feature, places in occurrences.items():
        share = word_values.get(feature, 0.0) * float(word_weights[feature]) / len(places)
        for first, last in places:
            scores[first:last] += share / (last - first)

    char_values = _row_values(char.transform([normalized]))
    codes, window_starts, lengths = char.windows([normalized])
    features = char.lookup(codes)
    hit = features >= 0
    counts: dict[int, int] = defaultdict(int)
    for feature in features[hit].tolist():
        counts[feature] += 1
    # Padded-text positions are one ahead of the normalised text (the leading pad space).
    for feature, begin, size in zip(
        features[hit].tolist(),
        (window_starts[hit] - 1).tolist(),
        lengths[hit].tolist(),
        strict=True,
    ):
        end = begin + size
        first = int(np.searchsorted(ends, begin, side="right"))
        last = int(np.searchsorted(starts, end, side="left"))
        if first >= last:
            continue  # only spaces or punctuation: no word to credit
        share = char_values.get(feature, 0.0) * float(char_weights[feature]) / counts[feature]
        overlap = np.minimum(ends[first:last], end) - np.maximum(starts[first:last], begin)
        scores[first:last] += share * overlap / overlap.sum()

    order = [i for i in np.argsort(-scores, kind="stable")[:top_k] if scores[i] > 0]
    spans = []
    for i in order:
        start = int(offsets[starts[i]])
        stop = int(offsets[ends[i] - 1]) + 1
        spans.append(Span(text=text[start:stop], start=start, end=stop, weight=float(scores[i])))
    return spans
