"""Explanations: the word spans of a comment whose n-grams pushed one attribute's score up.

Work is bounded per comment: every step is an array operation over the tokens and character
windows of at most the first `MAX_TOKENS` tokens and `MAX_CHARS` normalised characters, which
covers all of an ordinary comment (a 10,000-character one has about 2,000 tokens).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice

import numpy as np

from classifier.features import WORD_PATTERN, CharNgramFeaturizer, WordNgramFeaturizer
from classifier.located import Located
from classifier.normalize import normalize

__all__ = ["MAX_CHARS", "MAX_TOKENS", "Span", "explain_text"]

# A hostile text holds many times the tokens of an ordinary one of the same length ("½" x
# 10,000 folds to 20,000 one-digit tokens, "a " x 5,000 is 5,000): only its start is explained.
# The score still reads the whole text; the explanation names the words at its start.
MAX_TOKENS = 4096
MAX_CHARS = 20_000


@dataclass(frozen=True, slots=True)  # slots: a third cheaper to make, up to 18 per comment
class Span:
    """A piece of the original comment: `text == original[start:end]`, with its contribution."""

    text: str
    start: int
    end: int
    weight: float


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


# One comment's n-gram occurrences and the tokens they credit, as parallel arrays: entry e
# gives part `fraction[e]` of occurrence `occurrence[e]`'s contribution to token `token[e]`.
_Credits = tuple[np.ndarray, np.ndarray, np.ndarray]


def explain_text(
    text: str,
    *,
    word: WordNgramFeaturizer,
    char: CharNgramFeaturizer,
    word_weights: np.ndarray,
    char_weights: np.ndarray,
    top_k: int = 5,
    columns: Sequence[int] | None = None,
    located: tuple[Located, Located] | None = None,
) -> list[list[Span]]:
    """Spread each n-gram's contribution (tf-idf value x weight) over the word tokens it covers.

    `word_weights` and `char_weights` hold one column per attribute, of which `columns` (all
    by default) are explained; only the rows of the comment's own n-grams are read, so the
    full weight matrices are passed as they are, never copied. Word n-grams share their
    contribution equally among their tokens; character n-grams among the tokens they overlap
    (a char n-gram lives inside one whitespace-separated word, which may hold several tokens,
    e.g. "don't"). Returns, per column, the `top_k` tokens with a positive total, largest
    first, with offsets into the original `text`. Only the start of a very long text is
    explained (see `MAX_TOKENS` and `MAX_CHARS`). `located`, the text's word and char
    n-grams as scoring found them (`ToxicityModel.featurize`), saves finding them again.
    """
    width = word_weights.shape[1] if columns is None else len(columns)
    full, offsets = normalize(text)
    normalized, matches = _explained_part(full)
    if not matches or top_k <= 0:
        return [[] for _ in range(width)]
    n_tokens, n_word = len(matches), len(word.idf_)
    starts = np.fromiter(map(re.Match.start, matches), dtype=np.int64, count=n_tokens)
    ends = np.fromiter(map(re.Match.end, matches), dtype=np.int64, count=n_tokens)
    if located is None or len(normalized) < len(full):  # a cut text has its own n-grams
        tokens = list(map(re.Match.group, matches))
        located = word.occurrences(tokens), _char_windows(normalized, char)
    word_features, word_credits = _word_credits(*located[0])
    char_features, char_credits = _char_credits(*located[1], starts=starts, ends=ends)
    # One feature space for both blocks (char features after the word ones, as in the model),
    # so the comment's sparse row and its weights are gathered once for every attribute.
    features = np.concatenate((word_features, char_features + n_word))
    if not len(features):
        return [[] for _ in range(width)]
    unique, inverse, share, split = _feature_row(features, word=word, char=char)
    weights = np.concatenate((word_weights[unique[:split]], char_weights[unique[split:] - n_word]))
    if columns is not None:
        weights = weights[:, columns]
    occurrence, token, fraction = (
        np.concatenate((w, c)) for w, c in zip(word_credits, char_credits, strict=True)
    )
    occurrence[len(word_credits[0]) :] += len(word_features)  # char occurrences come second
    scores = _token_scores((occurrence, token, fraction), inverse, share, weights, n_tokens)
    return _top_spans(scores, text, offsets=offsets, starts=starts, ends=ends, top_k=top_k)


def _feature_row(
    features: np.ndarray, *, word: WordNgramFeaturizer, char: CharNgramFeaturizer
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The comment's TF-IDF row from its occurrences: (features, occurrence -> position in
    them, each feature's value divided among its occurrences, number of word features).

    The same values `transform` gives (sublinear tf, idf, l2 norm per block), computed from
    the occurrences already found rather than by featurising the text again. `np.unique`,
    spelled out: its Python layers cost more than its sort for a comment's few hundred.
    """
    order = features.argsort()
    ordered = features[order]
    first = np.empty(len(ordered), dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    inverse = np.empty(len(order), dtype=np.int64)
    inverse[order] = first.cumsum() - 1
    starts = first.nonzero()[0]
    unique = ordered[starts]
    counts = np.empty(len(starts), dtype=np.int64)
    counts[:-1] = starts[1:] - starts[:-1]
    counts[-1] = len(ordered) - starts[-1]
    n_word = len(word.idf_)
    split = int(unique.searchsorted(n_word))
    idf = np.concatenate((word.idf_[unique[:split]], char.idf_[unique[split:] - n_word]))
    values = (np.log(counts) + 1.0) * idf
    for block in (values[:split], values[split:]):
        norm = math.sqrt(float(block.dot(block)))
        block /= norm if norm > 0.0 else 1.0
    share: np.ndarray = values / counts
    return unique, inverse, share, split


def _word_credits(
    features: np.ndarray, firsts: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, _Credits]:
    """The word n-gram occurrences (features) and their credits: equal among their tokens."""
    occurrence = np.arange(len(features)).repeat(lengths)
    # Entry e of occurrence o credits token firsts[o] + (e - first entry of o).
    token = (firsts - lengths.cumsum() + lengths).repeat(lengths) + np.arange(len(occurrence))
    return features, (occurrence, token, 1.0 / lengths[occurrence])


def _char_windows(normalized: str, char: CharNgramFeaturizer) -> Located:
    """The vocabulary char n-grams of `normalized`: (features, window starts, lengths)."""
    codes, window_starts, lengths = char.windows([normalized])
    features = char.lookup(codes)
    hit = (features >= 0).nonzero()[0]
    return features[hit], window_starts[hit], lengths[hit]


def _char_credits(
    features: np.ndarray,
    window_starts: np.ndarray,
    lengths: np.ndarray,
    *,
    starts: np.ndarray,
    ends: np.ndarray,
) -> tuple[np.ndarray, _Credits]:
    """The char n-gram occurrences (features) and their credits to the tokens they overlap.

    A window is shared among the tokens it overlaps by how many of its characters each holds:
    all of it for one inside a single token, a part of it for one that crosses tokens
    ("don't", every window of "p.m.p.m."). A window of n characters touches at most n tokens.
    """
    # Padded-text positions are one ahead of the normalised text (the leading pad space).
    begins = window_starts - 1
    finishes = begins + lengths
    firsts = ends.searchsorted(begins, side="right")
    spanned = starts.searchsorted(finishes, side="left") - firsts
    # A window of only spaces or punctuation overlaps no token and credits no word.
    on_words = spanned.nonzero()[0]
    touches = spanned[on_words]
    owner = on_words.repeat(touches)
    entry_starts = touches.cumsum() - touches
    token = (firsts[on_words] - entry_starts).repeat(touches) + np.arange(len(owner))
    if len(owner) == len(on_words):  # no window crosses tokens: each credits one wholly
        return features, (owner, token, np.ones(len(owner)))
    overlap = np.minimum(ends[token], finishes[owner]) - np.maximum(starts[token], begins[owner])
    totals = np.add.reduceat(overlap, entry_starts)
    return features, (owner, token, overlap / totals.repeat(touches))


def _token_scores(
    credits: _Credits,
    feature_of: np.ndarray,
    share: np.ndarray,
    weights: np.ndarray,
    n_tokens: int,
) -> np.ndarray:
    """(tokens, columns) scores: the sparse (token x feature) credit matrix times the weights.

    The credit matrix, in coordinate form, holds how much of every feature's value each token
    is credited (`share` per feature, `feature_of` per occurrence); one product with the
    comment's weight rows scores every attribute. Summed with one `bincount`, in entry order,
    so tokens credited alike (a repeated word) get bit-equal scores and keep their order.
    """
    occurrence, token, fraction = credits
    column = feature_of[occurrence]
    width = weights.shape[1]
    products = (share[column] * fraction)[:, None] * weights[column]
    cells = (token * width)[:, None] + np.arange(width)
    scores = np.bincount(cells.ravel(), weights=products.ravel(), minlength=n_tokens * width)
    return scores.reshape(n_tokens, width)


def _top_spans(
    scores: np.ndarray,
    text: str,
    *,
    offsets: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    top_k: int,
) -> list[list[Span]]:
    """Per column, the `top_k` tokens with a positive score, largest first, as spans of `text`."""
    order = (-scores).argsort(axis=0, kind="stable")[:top_k].T
    best = scores[order, np.arange(len(order))[:, None]]
    chosen = order.ravel()
    bounds = zip(
        offsets[starts[chosen]].tolist(), (offsets[ends[chosen] - 1] + 1).tolist(), strict=True
    )
    spans: list[list[Span]] = [[] for _ in range(len(order))]
    for column, value, (start, stop) in zip(
        np.arange(len(order)).repeat(order.shape[1]).tolist(),
        best.ravel().tolist(),
        bounds,
        strict=True,
    ):
        if value > 0:
            spans[column].append(Span(text[start:stop], start, stop, value))
    return spans
