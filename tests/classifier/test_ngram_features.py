"""The fast n-gram featurizers count exactly what scikit-learn's vectorizers count."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer

from classifier import features
from classifier.features import CharNgramFeaturizer, WordNgramFeaturizer

TEXTS = [
    "you are a stupid idiot, shut up",
    "thank you  for the   thoughtful article",
    "  leading and trailing spaces  ",
    "a b c d e",
    "",
    "don't do it!!! ok",
    "naïve café — déjà vu",
]


def test_char_counts_equal_sklearn_char_wb() -> None:
    featurizer = CharNgramFeaturizer(ngram_range=(2, 5), max_features=10_000, min_count=1)
    counts = featurizer.fit_counts(TEXTS)
    vocabulary = [featurizer.decode(int(code)) for code in featurizer.codes_]
    reference = CountVectorizer(
        analyzer="char_wb", ngram_range=(2, 5), lowercase=False, vocabulary=vocabulary
    ).transform(TEXTS)
    assert abs(counts - reference).sum() == 0


def test_word_counts_equal_sklearn_word_ngrams() -> None:
    featurizer = WordNgramFeaturizer(ngram_range=(1, 2), max_features=10_000, min_count=1)
    counts = featurizer.fit_counts(TEXTS)
    reference = CountVectorizer(
        lowercase=False,
        ngram_range=(1, 2),
        token_pattern=r"(?u)\b\w+\b",
        vocabulary=featurizer.vocabulary_,
    ).transform(TEXTS)
    assert abs(counts - reference).sum() == 0


def test_unknown_characters_and_ngrams_are_ignored() -> None:
    featurizer = CharNgramFeaturizer(max_features=1000, min_count=1)
    featurizer.fit_counts(["abc abd"])
    counts = featurizer.counts(["zzz", "ab\u4e2d"])
    assert counts[0].sum() == 0
    assert counts[1].sum() == 3  # " a", "ab", " ab": windows touching the unknown char drop
    assert np.all(featurizer.lookup(featurizer.codes_) == np.arange(len(featurizer.codes_)))


def test_char_six_grams_equal_sklearn_with_a_capped_alphabet() -> None:
    many = "".join(chr(c) for c in range(0x4E00, 0x4E00 + 1600))  # more chars than 6-grams allow
    texts = [*TEXTS, many]
    featurizer = CharNgramFeaturizer(ngram_range=(2, 6), max_features=50_000, min_count=1)
    counts = featurizer.fit_counts(texts)
    assert len(featurizer.alphabet_) + 2 <= int((2.0**63) ** (1 / 6))
    vocabulary = [featurizer.decode(int(code)) for code in featurizer.codes_]
    reference = CountVectorizer(
        analyzer="char_wb", ngram_range=(2, 6), lowercase=False, vocabulary=vocabulary
    ).transform(texts)
    assert abs(counts - reference).sum() == 0


def test_large_batches_are_counted_in_chunks_with_the_same_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    featurizer = CharNgramFeaturizer(max_features=10_000, min_count=1)
    whole = featurizer.fit_counts(TEXTS)
    monkeypatch.setattr(features, "_FIT_CHUNK", 2)
    chunked = featurizer.counts(TEXTS)
    assert chunked.shape == whole.shape and abs(chunked - whole).sum() == 0
