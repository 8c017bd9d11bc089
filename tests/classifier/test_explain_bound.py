"""Explanations cost bounded work per comment, and ordinary comments are explained as before."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import pytest
import scipy.sparse as sp

from classifier.explain import MAX_CHARS, MAX_TOKENS, Span, explain_text
from classifier.features import WORD_PATTERN, CharNgramFeaturizer, WordNgramFeaturizer
from classifier.fitted import FittedToxicity
from classifier.normalize import normalize
from tests.factories import CIVIL, TOXIC, default_scorer

ATTRIBUTES = ("toxic", "insult", "obscene")


def _model() -> FittedToxicity:
    return default_scorer().model


def _weights(model: FittedToxicity) -> tuple[np.ndarray, np.ndarray]:
    columns = [0, 4, 2]  # toxic, insult, obscene
    n_word = len(model.word_.vocabulary_)
    return model.coef_[:n_word][:, columns], model.coef_[n_word:][:, columns]


def _row_value(row: sp.csr_matrix, feature: int) -> np.float64:
    # A numpy scalar, not a float: a Python float would let float32 weights set the precision.
    hits = np.flatnonzero(row.indices == feature)
    return np.float64(row.data[hits[0]] if len(hits) else 0.0)


def _reference(text: str, model: FittedToxicity, *, top_k: int) -> list[list[Span]]:
    """The explanation as first written: one Python step per n-gram and per window."""
    word_weights, char_weights = _weights(model)
    normalized, offsets = normalize(text)
    matches = list(WORD_PATTERN.finditer(normalized))
    starts = np.array([m.start() for m in matches])
    ends = np.array([m.end() for m in matches])
    tokens = [m.group() for m in matches]
    scores = np.zeros((len(tokens), word_weights.shape[1]))
    word_row = model.word_.transform([normalized])
    places: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for n in range(model.word_.ngram_range[0], model.word_.ngram_range[1] + 1):
        for i in range(len(tokens) - n + 1):
            feature = model.word_.index_.get(" ".join(tokens[i : i + n]))
            if feature is not None:
                places[feature].append((i, i + n))
    for feature, spots in places.items():
        share = _row_value(word_row, feature) * word_weights[feature]
        for first, last in spots:
            scores[first:last] += share / (len(spots) * (last - first))
    codes, positions, lengths = model.char_.windows([normalized])
    features = model.char_.lookup(codes)
    char_row = model.char_.transform([normalized])
    counts = np.bincount(features[features >= 0])
    for feature, begin, length in zip(features, positions - 1, lengths, strict=True):
        if feature < 0:
            continue
        end = begin + length
        covered = [i for i in range(len(tokens)) if ends[i] > begin and starts[i] < end]
        if not covered:
            continue
        overlap = np.array([min(ends[i], end) - max(starts[i], begin) for i in covered])
        share = _row_value(char_row, feature) / counts[feature] * char_weights[feature]
        scores[covered] += share * (overlap / overlap.sum())[:, None]
    explained = []
    for column in scores.T:
        order = [i for i in np.argsort(-column, kind="stable")[:top_k] if column[i] > 0]
        spans = []
        for i in order:
            start, stop = int(offsets[starts[i]]), int(offsets[ends[i] - 1]) + 1
            spans.append(Span(text[start:stop], start, stop, float(column[i])))
        explained.append(spans)
    return explained


def _explain(
    text: str,
    model: FittedToxicity,
    *,
    top_k: int = 5,
    word: WordNgramFeaturizer | None = None,
    char: CharNgramFeaturizer | None = None,
) -> list[list[Span]]:
    word_weights, char_weights = _weights(model)
    return explain_text(
        text,
        word=word or model.word_,
        char=char or model.char_,
        word_weights=word_weights,
        char_weights=char_weights,
        top_k=top_k,
    )


ORDINARY = [
    *TOXIC[:8],
    *CIVIL[:4],
    "Don't you dare, you idiot's idiot. It's 5 p.m. and you're still a moron!!!",
    "<p>You <b>id</b>iot</p> see http://x.com/idiot &amp; st00pid \u0456diot",
    " ".join(TOXIC + CIVIL),  # about 2,500 characters
]


@pytest.mark.parametrize("text", ORDINARY, ids=range(len(ORDINARY)))
def test_ordinary_comments_are_explained_exactly_as_by_the_straightforward_loop(
    text: str,
) -> None:
    model = _model()
    expected = _reference(text, model, top_k=5)
    explained = _explain(text, model)
    assert any(expected), "the case must name some words"
    for got, want in zip(explained, expected, strict=True):
        assert [(s.text, s.start, s.end) for s in got] == [(s.text, s.start, s.end) for s in want]
        assert [s.weight for s in got] == pytest.approx([s.weight for s in want], rel=1e-9)


def test_a_ten_thousand_character_comment_is_explained_to_its_last_word() -> None:
    civil = " ".join(CIVIL * 20)[:9_980]
    text = civil + " you idiot"
    spans = _explain(text, _model(), top_k=1)[0]
    assert [(s.text, s.start) for s in spans] == [("idiot", len(text) - 5)]


class _CountingWords(WordNgramFeaturizer):
    """The shipped word featurizer, counting the tokens it is asked to look up."""

    def __init__(self, inner: WordNgramFeaturizer) -> None:
        self.__dict__.update(inner.__dict__)
        self.tokens_seen: list[int] = []

    def occurrences(self, tokens: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self.tokens_seen.append(len(tokens))
        return super().occurrences(tokens)


class _CountingChars(CharNgramFeaturizer):
    """The shipped char featurizer, counting the characters it slides windows over."""

    def __init__(self, inner: CharNgramFeaturizer) -> None:
        self.__dict__.update(inner.__dict__)
        self.chars_seen: list[int] = []

    def windows(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self.chars_seen.extend(len(t) for t in texts)
        return super().windows(texts)


HOSTILE = {
    "one-digit tokens": "\u00bd" * 10_000,  # "1", a fraction slash, "2": two tokens each
    "p.m. run": "\u33d8" * 10_000,  # every char window crosses a token boundary
    "one-letter words": "a " * 15_000,
    "one long word": "idiot" * 6_000,
}


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_comment_is_explained_from_a_bounded_start(text: str) -> None:
    model = _model()
    words, chars = _CountingWords(model.word_), _CountingChars(model.char_)
    explained = _explain(text, model, top_k=3, word=words, char=chars)
    assert len(normalize(text)[0]) > MAX_CHARS or len(WORD_PATTERN.findall(text)) > MAX_TOKENS
    assert 0 < max(words.tokens_seen, default=0) <= MAX_TOKENS
    assert 0 < max(chars.chars_seen) <= MAX_CHARS
    for spans in explained:
        assert len(spans) <= 3
        assert all(text[s.start : s.end] == s.text for s in spans)


def test_the_explained_start_of_a_hostile_comment_still_names_its_words() -> None:
    text = "you idiot " * 3_000  # 6,000 tokens: more than are explained
    spans = _explain(text, _model(), top_k=1)[0]
    assert len(spans) == 1
    assert spans[0].text == "idiot"
    assert spans[0].start < MAX_CHARS
