"""Fast explanations (issue 13) explain and score real comments exactly as before.

The reference is the explanation as it stood before issue 13 (vectorised, re-featurising the
text, copying the weight columns), kept here with its featurizer calls replaced by
straightforward lookups (vocabulary dictionaries, a binary search of the sorted char codes),
so it shares none of the code it checks. The comments are real news comments from the
shared data, read in place; the tests skip when it is absent.
"""

from __future__ import annotations

import csv
import gzip
import os
import re
import tracemalloc
from collections.abc import Callable, Sequence
from functools import cache
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from classifier import ATTRIBUTES, Span
from classifier.explain import MAX_CHARS, MAX_TOKENS
from classifier.features import WORD_PATTERN, CharNgramFeaturizer, tfidf_weight
from classifier.fitted import FittedToxicity, side_by_side
from classifier.normalize import normalize, normalize_text
from service.models.scoring import ModelScorer
from tests.factories import CIVIL, TOXIC, default_scorer

DATA_DIR = Path(os.environ.get("MODERATION_DATA_DIR", Path(__file__).parents[3] / "shared/data"))
# Repeated words are the ties an explanation must keep in order (the first one first).
TIES = [
    "idiot idiot idiot",
    "you idiot, you idiot, you idiot!",
    "no no no no, stupid stupid people",
    "Don't you dare, you idiot's idiot. It's 5 p.m. and you're still a moron!!!",
]


def _made_up_comments() -> tuple[str, ...]:
    """Where the shared data is not (a clone elsewhere): 400 comments of the model's own
    vocabulary, its heaviest words among them, with the capitals, punctuation and repeats of
    real ones, so every path of the explanation still runs."""
    model = _model()
    words = sorted(model.word_.index_)
    rng = np.random.RandomState(13)
    texts = []
    for n in range(400):
        picked = [words[i] for i in rng.randint(0, len(words), size=rng.randint(3, 80))]
        if n % 3 == 0:
            picked += picked[: rng.randint(1, 4)]  # ties: a word again, later
        text = " ".join(w.capitalize() if rng.rand() < 0.1 else w for w in picked)
        texts.append(text + rng.choice([".", "!!!", "?", ""]))
    return (*texts, *TOXIC, *CIVIL, *TIES)


@cache
def _real_comments() -> tuple[str, ...]:
    """400 news comments: 300 toxic (held-like), 100 of the rest of the Civil Comments sample."""
    if not (DATA_DIR / "toxic_spans_train.csv.gz").exists():
        return _made_up_comments()
    rows: dict[str, list[dict[str, str]]] = {}
    for name in ("civil_comments_sample_train", "toxic_spans_train"):
        with gzip.open(DATA_DIR / f"{name}.csv.gz", "rt", encoding="utf-8", newline="") as f:
            rows[name] = list(csv.DictReader(f))
    civil = rows["civil_comments_sample_train"]
    spans = [r["comment_text"] for r in rows["toxic_spans_train"] if r["toxic"] == "1"]
    picked = np.random.RandomState(13).permutation(len(spans))[:225]
    return (
        *(r["comment_text"] for r in civil if r["toxic"] == "1"),
        *(spans[i] for i in sorted(picked)),
        *[r["comment_text"] for r in civil if r["toxic"] == "0"][:100],
        *TIES,
    )


def _model() -> FittedToxicity:
    return default_scorer().model


# -- the reference: straightforward n-gram lookups ------------------------------------------
def _word_occurrences(tokens: list[str], model: FittedToxicity) -> tuple[np.ndarray, ...]:
    """(features, first tokens, lengths) of the vocabulary word n-grams, by length then place."""
    found = []
    low, high = model.word_.ngram_range
    for n in range(low, high + 1):
        for i in range(len(tokens) - n + 1):
            feature = model.word_.index_.get(" ".join(tokens[i : i + n]))
            if feature is not None:
                found.append((feature, i, n))
    return tuple(
        np.array(column, dtype=np.int64).reshape(-1) for column in zip(*found, strict=True)
    )


def _char_lookup(char: CharNgramFeaturizer, codes: np.ndarray) -> np.ndarray:
    where = np.minimum(np.searchsorted(char.codes_, codes), len(char.codes_) - 1)
    return np.where(char.codes_[where] == codes, where, -1)


def _counts(rows: np.ndarray, features: np.ndarray, *, shape: tuple[int, int]) -> sp.csr_matrix:
    counts = sp.csr_matrix((np.ones(len(rows)), (rows, features)), shape=shape)
    counts.sum_duplicates()
    return counts


def _word_counts(texts: Sequence[str], model: FittedToxicity) -> sp.csr_matrix:
    rows, features = [], []
    for row, text in enumerate(texts):
        found = _word_occurrences(WORD_PATTERN.findall(text), model)
        if found:
            rows += [row] * len(found[0])
            features += found[0].tolist()
    shape = (len(texts), len(model.word_.vocabulary_))
    return _counts(np.array(rows, dtype=np.int64), np.array(features, dtype=np.int64), shape=shape)


def _char_counts(texts: Sequence[str], model: FittedToxicity) -> sp.csr_matrix:
    codes, positions, _ = model.char_.windows(texts)
    features = _char_lookup(model.char_, codes)
    hit = features >= 0
    rows = model.char_.documents_of(texts, positions[hit])
    return _counts(rows, features[hit], shape=(len(texts), len(model.char_.codes_)))


def _reference_proba(model: FittedToxicity, texts: Sequence[str]) -> np.ndarray:
    """`predict_proba` as it was: TF-IDF blocks stacked to float32, one product, Platt."""
    normalized = [normalize_text(t) for t in texts]
    x = sp.hstack(
        [
            tfidf_weight(_word_counts(normalized, model), model.word_.idf_),
            tfidf_weight(_char_counts(normalized, model), model.char_.idf_),
        ],
        format="csr",
        dtype=np.float32,
    )
    decision = np.asarray(x @ model.coef_, dtype=np.float64) + model.intercept_
    z = decision * model.calibration_[:, 0] + model.calibration_[:, 1]
    return 0.5 * (1.0 + np.tanh(0.5 * z))


# -- the reference: the explanation before issue 13 -----------------------------------------
def _values_at(row: sp.csr_matrix, features: np.ndarray) -> np.ndarray:
    order = np.argsort(row.indices)
    indices, data = row.indices[order], row.data[order]
    where = np.clip(np.searchsorted(indices, features), 0, max(len(indices) - 1, 0))
    if len(indices) == 0:
        return np.zeros(len(features))
    return np.where(indices[where] == features, data[where], 0.0)


def _explained_part(normalized: str) -> tuple[str, list[re.Match[str]]]:
    if len(normalized) > MAX_CHARS:
        space = normalized.rfind(" ", 0, MAX_CHARS)
        normalized = normalized[: space if space > 0 else MAX_CHARS]
    matches = list(islice(WORD_PATTERN.finditer(normalized), MAX_TOKENS + 1))
    if len(matches) > MAX_TOKENS:
        matches = matches[:MAX_TOKENS]
        normalized = normalized[: matches[-1].end()]
    return normalized, matches


@cache
def _weight_columns(columns: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    # What `explain_many` once copied on every call, copied once here.
    model = _model()
    n_word = len(model.word_.vocabulary_)
    return model.coef_[:n_word][:, list(columns)], model.coef_[n_word:][:, list(columns)]


def _reference_explain(text: str, attributes: Sequence[str], *, top_k: int) -> list[list[Span]]:
    word_weights, char_weights = _weight_columns(tuple(ATTRIBUTES.index(a) for a in attributes))
    full, offsets = normalize(text)
    normalized, matches = _explained_part(full)
    if not matches or top_k <= 0:
        return [[] for _ in attributes]
    starts = np.array([m.start() for m in matches], dtype=np.int64)
    ends = np.array([m.end() for m in matches], dtype=np.int64)
    scores = np.zeros((len(matches), len(attributes)))
    tokens = [m.group() for m in matches]
    _add_word_contributions(scores, normalized, tokens=tokens, weights=word_weights)
    _add_char_contributions(scores, normalized, starts=starts, ends=ends, weights=char_weights)
    return [_top_spans(column, text, offsets, starts, ends, top_k=top_k) for column in scores.T]


def _add_word_contributions(
    scores: np.ndarray, normalized: str, *, tokens: list[str], weights: np.ndarray
) -> None:
    model = _model()
    found = _word_occurrences(tokens, model)
    if not found:
        return
    features, firsts, lengths = found
    _, inverse, counts = np.unique(features, return_inverse=True, return_counts=True)
    row = tfidf_weight(_word_counts([normalized], model), model.word_.idf_)
    values = _values_at(row, features)
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
    weights: np.ndarray,
) -> None:
    model = _model()
    codes, window_starts, lengths = model.char_.windows([normalized])
    features = _char_lookup(model.char_, codes)
    hit = features >= 0
    features = features[hit]
    begins = window_starts[hit] - 1
    finishes = begins + lengths[hit]
    firsts = np.searchsorted(ends, begins, side="right")
    lasts = np.searchsorted(starts, finishes, side="left")
    on_words = firsts < lasts
    if not on_words.any():
        return
    _, inverse, counts = np.unique(features, return_inverse=True, return_counts=True)
    row = tfidf_weight(_char_counts([normalized], model), model.char_.idf_)
    shares = (_values_at(row, features) / counts[inverse])[:, None] * weights[features]
    single = on_words & (lasts - firsts == 1)
    np.add.at(scores, firsts[single], shares[single])
    across = np.flatnonzero(on_words & ~single)
    if len(across):
        k = np.arange(int((lasts[across] - firsts[across]).max()))
        touched = firsts[across][:, None] + k
        inside = touched < lasts[across][:, None]
        touched = np.minimum(touched, len(starts) - 1)
        overlap = np.minimum(ends[touched], finishes[across][:, None]) - np.maximum(
            starts[touched], begins[across][:, None]
        )
        overlap = np.where(inside, overlap, 0)
        fraction = overlap / overlap.sum(axis=1, keepdims=True)
        parts = shares[across][:, None, :] * fraction[:, :, None]
        np.add.at(scores, touched[inside], parts[inside])


def _top_spans(
    column: np.ndarray,
    text: str,
    offsets: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    *,
    top_k: int,
) -> list[Span]:
    order = [i for i in np.argsort(-column, kind="stable")[:top_k] if column[i] > 0]
    spans = []
    for i in order:
        start, stop = int(offsets[starts[i]]), int(offsets[ends[i] - 1]) + 1
        spans.append(Span(text[start:stop], start, stop, float(column[i])))
    return spans


def _assert_same(got: dict[str, list[Span]], want: list[list[Span]], *, text: str) -> None:
    for attribute, expected in zip(got, want, strict=True):
        spans = got[attribute]
        where = f"{attribute} of {text[:60]!r}"
        assert [(s.text, s.start, s.end) for s in spans] == [
            (s.text, s.start, s.end) for s in expected
        ], where
        weights = [s.weight for s in expected]
        assert [s.weight for s in spans] == pytest.approx(weights, rel=1e-9, abs=0), where


# -- the tests ------------------------------------------------------------------------------
CASES = [(ATTRIBUTES, 3), (("insult", "toxic"), 5), (("threat",), 1)]


@pytest.mark.parametrize(("attributes", "top_k"), CASES, ids=["all-six", "two", "threat"])
def test_explanations_name_the_same_spans_with_the_same_weights_as_before(
    attributes: Sequence[str], top_k: int
) -> None:
    model = _model()
    named = 0
    for text in _real_comments():
        got = model.explain_many(text, attributes, top_k=top_k)
        _assert_same(got, _reference_explain(text, attributes, top_k=top_k), text=text)
        named += any(got.values())
    assert named > 300  # the comparison is about real spans, not empty lists


@pytest.mark.parametrize("batch", [1, 7, 50])
def test_explanations_from_a_scored_batch_are_the_same_as_from_the_text_alone(
    batch: int,
) -> None:
    model, texts = _model(), _real_comments()
    for first in range(0, len(texts), batch):
        featurized = model.featurize(texts[first : first + batch])
        for text in texts[first : first + batch]:
            got = model.explain_many(text, ATTRIBUTES, top_k=3, located=featurized.located(text))
            _assert_same(got, _reference_explain(text, ATTRIBUTES, top_k=3), text=text)


def test_a_batch_locates_every_text_as_featurising_it_alone_would() -> None:
    model, texts = _model(), _real_comments()[:60]
    featurized = model.featurize(texts)
    for text in texts:
        normalized = normalize_text(text)
        located = featurized.located(text)
        assert located is not None
        (word_features, firsts, lengths), char_hits = located
        expected = _word_occurrences(WORD_PATTERN.findall(normalized), model)
        for got, want in zip((word_features, firsts, lengths), expected, strict=True):
            np.testing.assert_array_equal(got, want)
        codes, positions, char_lengths = model.char_.windows([normalized])
        features = _char_lookup(model.char_, codes)
        hit = features >= 0
        for got, want in zip(char_hits, (features, positions, char_lengths), strict=True):
            np.testing.assert_array_equal(got, want[hit])
    assert featurized.located("not in the batch") is None


def test_normalize_text_is_the_text_whose_offsets_normalize_maps() -> None:
    # Explanations place scoring's n-grams (found in normalize_text) on normalize's offsets.
    for text in _real_comments():
        assert normalize_text(text) == normalize(text)[0]


def test_scores_are_bit_for_bit_those_of_the_previous_scoring() -> None:
    model, texts = _model(), list(_real_comments())
    expected = _reference_proba(model, texts)
    np.testing.assert_array_equal(model.predict_proba(texts), expected)
    np.testing.assert_array_equal(model.predict_proba_featurized(model.featurize(texts)), expected)
    one_by_one = np.vstack([model.predict_proba([t]) for t in texts[:100]])
    np.testing.assert_array_equal(one_by_one, _reference_proba(model, texts[:100]))
    scorer = ModelScorer(model)
    batched = np.vstack([scorer.predict_proba(texts[i : i + 16]) for i in range(0, len(texts), 16)])
    np.testing.assert_array_equal(batched, expected)


class _Counting:
    """Wraps a featurizer method, counting its calls."""

    def __init__(self, method: Callable[..., object]) -> None:
        self.method, self.calls = method, 0

    def __call__(self, *args: object, **kwargs: object) -> object:
        self.calls += 1
        return self.method(*args, **kwargs)


def test_the_scorer_explains_a_comment_of_its_last_batch_without_featurising_it_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scorer = ModelScorer(_model())
    batch = list(TOXIC[:6])
    scorer.predict_proba(batch)
    words = _Counting(scorer.model.word_.occurrences)
    chars = _Counting(scorer.model.char_.windows)
    monkeypatch.setattr(scorer.model.word_, "occurrences", words)
    monkeypatch.setattr(scorer.model.char_, "windows", chars)
    explained = [scorer.explain_many(text, ATTRIBUTES, top_k=3) for text in batch]
    assert (words.calls, chars.calls) == (0, 0)
    # A comment the last batch does not hold is featurised afresh.
    other = CIVIL[0] + " you idiot"
    explained.append(scorer.explain_many(other, ATTRIBUTES, top_k=3))
    assert (words.calls, chars.calls) == (1, 1)
    monkeypatch.undo()
    for text, got in zip([*batch, other], explained, strict=True):
        _assert_same(got, _reference_explain(text, ATTRIBUTES, top_k=3), text=text)


def test_a_hostile_comment_scored_in_a_batch_is_explained_from_its_bounded_start() -> None:
    model = _model()
    hostile = ["you idiot " * 3_000, "a " * 15_000, "idiot" * 6_000]
    featurized = model.featurize([*hostile, TOXIC[0]])
    for text in hostile:
        located = featurized.located(text)
        assert located is not None
        assert model.explain_many(text, ATTRIBUTES, top_k=2, located=located) == (
            model.explain_many(text, ATTRIBUTES, top_k=2)
        )
    spans = model.explain(hostile[0], "insult", top_k=1, located=featurized.located(hostile[0]))
    assert [(s.text, s.start < MAX_CHARS) for s in spans] == [("idiot", True)]


def test_an_explanation_reads_the_weights_of_its_own_n_grams_without_copying_columns() -> None:
    model = _model()
    text = max(_real_comments(), key=len)  # about 1,000 characters
    model.explain_many(text, ("toxic", "insult"), top_k=3)  # warm the normaliser's tables
    tracemalloc.start()
    try:
        model.explain_many(text, ("toxic", "insult"), top_k=3)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # It once copied the two columns of every feature (4 MB); now its work is the text's.
    assert peak < model.coef_.nbytes / len(ATTRIBUTES) / 2


@pytest.mark.parametrize("rows", [0, 1, 5, 40])
def test_side_by_side_is_scipys_stack_to_the_bit(rows: int) -> None:
    rng = np.random.default_rng(rows)
    left = sp.random(rows, 300, density=0.05, format="csr", random_state=rng, dtype=np.float64)
    right = sp.random(rows, 700, density=0.02, format="csr", random_state=rng, dtype=np.float64)
    if rows > 2:  # rows empty on one side or both
        left = (sp.diags(np.arange(rows) != 1, dtype=np.float64) @ left).tocsr()
        right = (sp.diags(np.arange(rows) != 2, dtype=np.float64) @ right).tocsr()
    for block in (left, right):  # canonical, as the featurisers build them
        block.eliminate_zeros()
        block.sort_indices()
    expected = sp.hstack([left, right], format="csr", dtype=np.float32)
    stacked = side_by_side(left, right)
    assert stacked.shape == expected.shape and stacked.dtype == expected.dtype
    np.testing.assert_array_equal(stacked.indptr, expected.indptr)
    np.testing.assert_array_equal(stacked.indices, expected.indices)
    np.testing.assert_array_equal(stacked.data, expected.data)
