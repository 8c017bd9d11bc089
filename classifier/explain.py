"""Explanations: the word spans of a comment whose n-grams pushed one attribute's score up.

Work is bounded per comment: every step is an array operation over the tokens and character
windows of at most the first `MAX_TOKENS` tokens and `MAX_CHARS` normalised characters, which
covers all of an ordinary comment (a 10,000-character one has about 2,000 tokens).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import islice

import numpy as np
import scipy.sparse as sp

from classifier.features import WORD_PATTERN, CharNgramFeaturizer, WordNgramFeaturizer
from classifier.normalize import normalize

__all__ = ["MAX_CHARS", "MAX_TOKENS", "Span", "explain_text"]

# A hostile text holds many times the tokens of an ordinary one of the same length ("½" x
# 10,000 folds to 20,000 one-digit tokens, "a " x 5,000 is 5,000): only its start is explained.
# The score still reads the whole text; the explanation names the words at its start.
MAX_TOKENS = 4096
MAX_CHARS = 20_000


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


def _explained_part(normalized: str) -> tuple[str, list[re.Match[str]]]:
    """The start of `normalized` that is explained (all of an ordinary comment), and its tokens."""
    if len(normalized) > MAX_CHARS:
        # Cut between words where there is a space to cut at, so no word is explained halved.
        space = normalized.rfind(" ", 0, MAX_CHARS)
        normalized = normalized[: space if space > 0 else MAX_CHARS]
    matches = list(islice(WORD_PATTERN.finditer(normalized), MAX_TOKENS + 1))
    if len(matches) > MAX_TOKENS:
        matches = matches[:MAX_TOKENS]
        normalized = normalized[: matches[-1].end()]
    return normalized, matches


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
    offsets into the original `text`. Only the start of a very long text is explained (see
    `MAX_TOKENS` and `MAX_CHARS`).
    """
    columns = word_weights.shape[1]
    full, offsets = normalize(text)
    normalized, matches = _explained_part(full)
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
    features, firsts, lengths = word.occurrences(tokens)
    if not len(features):
        return
    _, inverse, counts = np.unique(features, return_inverse=True, return_counts=True)
    values = _values_at(word.transform([normalized]), features)
    # An n-gram's contribution is split among its occurrences, then among each one's tokens.
    shares = values[:, None] * weights[features] / (counts[inverse] * lengths)[:, None]
    for k in range(int(lengths.max())):
        covers = lengths > k
        np.add.at(scores, firsts[covers] + k, shares[covers])


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
    across = np.flatnonzero(on_words & ~single)
    if len(across):
        _add_across_tokens(
            scores,
            shares[across],
            tokens=(firsts[across], lasts[across]),
            windows=(begins[across], finishes[across]),
            bounds=(starts, ends),
        )


def _add_across_tokens(
    scores: np.ndarray,
    shares: np.ndarray,
    *,
    tokens: tuple[np.ndarray, np.ndarray],
    windows: tuple[np.ndarray, np.ndarray],
    bounds: tuple[np.ndarray, np.ndarray],
) -> None:
    """Share windows that cross tokens ("don't") among them by how many characters each holds.

    Rare in ordinary text but every window of "p.m.p.m." crosses one, so this is one array
    pass over (window, token) pairs: a window of n characters touches at most n tokens.
    """
    (firsts, lasts), (begins, finishes), (starts, ends) = tokens, windows, bounds
    k = np.arange(int((lasts - firsts).max()))
    touched = firsts[:, None] + k
    inside = touched < lasts[:, None]
    touched = np.minimum(touched, len(starts) - 1)  # padding cells, masked out below
    overlap = np.minimum(ends[touched], finishes[:, None]) - np.maximum(
        starts[touched], begins[:, None]
    )
    overlap = np.where(inside, overlap, 0)
    fraction = overlap / overlap.sum(axis=1, keepdims=True)
    np.add.at(scores, touched[inside], (shares[:, None, :] * fraction[:, :, None])[inside])


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
