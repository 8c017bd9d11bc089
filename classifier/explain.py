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


def _values_at(row: sp.csr_matrix, features: np.ndarray) -> np.ndarray:
    """The row's values at `features` (0 where the row has none), without a Python loop."""
    order = np.argsort(row.indices)
    indices, data = row.indices[order], row.data[order]
    where = np.clip(np.searchsorted(indices, features), 0, max(len(indices) - 1, 0))
    if len(indices) == 0:
        return np.zeros(len(features))
    return np.where(indices[where] == features, data[where], 0.0)


def explain_text(
    text: str,
    *,
    word: WordNgramFeaturizer,
    char: CharNgramFeaturizer,
    word_weights: np.ndarray,
    char_weights: np.ndarray,
    top_k: int = 5,
) -> list[list[Span]]:
    """Spread each n-gram's contribution (tf-idf value x weight) over the word tokens it covers.

    `word_weights` and `char_weights` hold one column per attribute to explain, so several
    attributes cost one pass over the text. Word n-grams share their contribution equally
    among their tokens; character n-grams among the tokens they overlap (a char n-gram lives
    inside one whitespace-separated word, which may hold several tokens, e.g. "don't").
    Returns, per column, the `top_k` tokens with a positive total, largest first, with
    offsets into the original `text`.
    """
    columns = word_weights.shape[1]
    normalized, offsets = normalize(text)
    matches = list(WORD_PATTERN.finditer(normalized))
    if not matches or top_k <= 0:
        return [[] for _ in range(columns)]
    starts = np.fromiter((m.start() for m in matches), dtype=np.int64, count=len(matches))
    ends = np.fromiter((m.end() for m in matches), dtype=np.int64, count=len(matches))
    scores = np.zeros((len(matches), columns))
    tokens = [m.group() for m in matches]
    _add_word_contributions(scores, normalized, tokens=tokens, word=word, weights=word_weights)
    _add_char_contributions(
        scores, normalized, starts=starts, ends=ends, char=char, weights=char_weights
    )
    return [
        _top_spans(column, text, offsets=offsets, starts=starts, ends=ends, top_k=top_k)
        for column in scores.T
    ]


def _add_word_contributions(
    scores: np.ndarray,
    normalized: str,
    *,
    tokens: list[str],
    word: WordNgramFeaturizer,
    weights: np.ndarray,
) -> None:
    """Add each word n-gram's contribution to `scores`, shared equally among its tokens."""
    word_row = word.transform([normalized])
    occurrences: dict[int, list[tuple[int, int]]] = defaultdict(list)
    low, high = word.ngram_range
    for n in range(low, high + 1):
        for i in range(len(tokens) - n + 1):
            feature = word.index_.get(" ".join(tokens[i : i + n]))
            if feature is not None:
                occurrences[feature].append((i, i + n))
    if occurrences:
        features = np.fromiter(occurrences, dtype=np.int64, count=len(occurrences))
        shares = _values_at(word_row, features)[:, None] * weights[features]
        for share, places in zip(shares, occurrences.values(), strict=True):
            for first, last in places:
                scores[first:last] += share / (len(places) * (last - first))


def _add_char_contributions(
    scores: np.ndarray,
    normalized: str,
    *,
    starts: np.ndarray,
    ends: np.ndarray,
    char: CharNgramFeaturizer,
    weights: np.ndarray,
) -> None:
    """Add each char n-gram's contribution to `scores`, shared among the tokens it overlaps."""
    codes, window_starts, lengths = char.windows([normalized])
    features = char.lookup(codes)
    hit = features >= 0
    features = features[hit]
    # Padded-text positions are one ahead of the normalised text (the leading pad space).
    begins = window_starts[hit] - 1
    finishes = begins + lengths[hit]
    firsts = np.searchsorted(ends, begins, side="right")
    lasts = np.searchsorted(starts, finishes, side="left")
    on_words = firsts < lasts  # a window of only spaces or punctuation credits no word
    if not on_words.any():
        return
    _, inverse, counts = np.unique(features, return_inverse=True, return_counts=True)
    values = _values_at(char.transform([normalized]), features)
    shares = (values / counts[inverse])[:, None] * weights[features]
    single = on_words & (lasts - firsts == 1)
    np.add.at(scores, firsts[single], shares[single])
    for i in np.flatnonzero(on_words & ~single):  # a window across "don't": rare
        first, last, begin, end = firsts[i], lasts[i], begins[i], finishes[i]
        overlap = np.minimum(ends[first:last], end) - np.maximum(starts[first:last], begin)
        scores[first:last] += shares[i] * (overlap / overlap.sum())[:, None]


def _top_spans(
    column: np.ndarray,
    text: str,
    *,
    offsets: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    top_k: int,
) -> list[Span]:
    """The `top_k` tokens with a positive score, largest first, as spans of the original text."""
    order = [i for i in np.argsort(-column, kind="stable")[:top_k] if column[i] > 0]
    spans = []
    for i in order:
        start = int(offsets[starts[i]])
        stop = int(offsets[ends[i] - 1]) + 1
        spans.append(Span(text[start:stop], start, stop, float(column[i])))
    return spans
