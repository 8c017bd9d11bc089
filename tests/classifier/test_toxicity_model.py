"""Fitting with partial labels, scoring and explaining comments."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from classifier import ATTRIBUTES, ToxicityModel

CorpusFactory = Callable[[], tuple[list[str], np.ndarray]]


def test_each_attribute_trains_only_on_rows_labelled_for_it(
    model: ToxicityModel, make_corpus: CorpusFactory
) -> None:
    threat = ATTRIBUTES.index("threat")
    texts, _ = make_corpus()
    n_fit = len(texts) - model.n_calibration_rows_
    assert model.n_train_rows_[ATTRIBUTES.index("toxic")] == n_fit
    assert 0 < model.n_train_rows_[threat] < n_fit  # the NaN rows were left out
    proba = model.predict_proba(texts)
    assert proba.shape == (len(texts), len(ATTRIBUTES))
    assert np.isfinite(proba).all() and (proba >= 0).all() and (proba <= 1).all()


def test_attribute_without_any_label_still_fits(make_corpus: CorpusFactory) -> None:
    texts, labels = make_corpus()
    labels[:, ATTRIBUTES.index("identity_hate")] = np.nan
    model = ToxicityModel(word_max_features=500, char_max_features=500, min_count=1, n_jobs=1)
    proba = model.fit(texts, labels).predict_proba(["you idiot"])
    assert np.isfinite(proba).all()


def test_insults_score_above_civil_sentences(model: ToxicityModel) -> None:
    insult = model.score("what a stupid idiot")
    civil = model.score("thanks for the citation on the map")
    assert insult["toxic"] > civil["toxic"]
    assert insult["insult"] > civil["insult"]
    assert set(insult) == set(ATTRIBUTES)


def test_predict_proba_handles_empty_input_and_rejects_a_bare_string(model: ToxicityModel) -> None:
    assert model.predict_proba([]).shape == (0, len(ATTRIBUTES))
    assert model.predict_proba([""]).shape == (1, len(ATTRIBUTES))
    with pytest.raises(TypeError):
        model.predict_proba("you idiot")  # type: ignore[arg-type]


def test_odd_input_scores_without_error(model: ToxicityModel) -> None:
    texts = ["\ud800 idiot", "\x00\x00", "\u200b", "   ", "x" * 20_000, "\U0001f595 you"]
    proba = model.predict_proba(texts)
    assert np.isfinite(proba).all()
    assert model.explain("\ud800 you idiot", "insult")[0].text == "idiot"


def test_sample_weight_must_match_the_rows(make_corpus: CorpusFactory) -> None:
    texts, labels = make_corpus()
    with pytest.raises(ValueError, match="sample_weight"):
        ToxicityModel().fit(texts, labels, sample_weight=np.ones(3))


def test_fit_is_reproducible_for_a_random_state(
    make_corpus: CorpusFactory, make_model: Callable[[int], ToxicityModel]
) -> None:
    texts, _ = make_corpus()
    np.testing.assert_array_equal(
        make_model(3).predict_proba(texts), make_model(3).predict_proba(texts)
    )


def test_explain_names_the_insulting_word_with_original_offsets(model: ToxicityModel) -> None:
    text = "Well, YOU are an ID\u200bIOT  today"
    spans = model.explain(text, "insult", top_k=3)
    assert spans, "expected at least one span"
    for span in spans:
        assert span.text == text[span.start : span.end]
        assert span.weight > 0
    assert spans[0].text == "ID\u200bIOT"
    assert [s.weight for s in spans] == sorted((s.weight for s in spans), reverse=True)


def test_explain_of_civil_text_or_unknown_attribute(model: ToxicityModel) -> None:
    assert model.explain("", "toxic") == []
    assert all(s.weight > 0 for s in model.explain("thanks for the map", "toxic"))
    with pytest.raises(ValueError, match="unknown attribute"):
        model.explain("you idiot", "rude")
