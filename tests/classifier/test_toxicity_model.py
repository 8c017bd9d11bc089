"""Fitting with partial labels, scoring and explaining comments."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypedDict

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from classifier import ATTRIBUTES, ToxicityModel
from classifier.model import nb_log_count_ratio

CorpusFactory = Callable[[], tuple[list[str], np.ndarray]]


class Small(TypedDict):
    """ToxicityModel's size arguments for a model that fits in a blink."""

    word_max_features: int
    char_max_features: int
    min_count: int
    n_jobs: int


class Variant(TypedDict, total=False):
    """ToxicityModel's recipe arguments, typed so that `**variant` type-checks."""

    class_weight: str | None
    nb_scaling: bool
    nb_binary: bool
    min_positives: int
    separate_word_char: bool


SMALL: Small = {"word_max_features": 500, "char_max_features": 500, "min_count": 1, "n_jobs": 1}


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
    model = ToxicityModel(**SMALL)
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
        model.predict_proba("you idiot")


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


def test_nb_ratio_favours_features_seen_with_positives() -> None:
    x = sp.csr_matrix(np.array([[1.0, 0.0, 1.0], [2.0, 0.0, 1.0], [0.0, 1.0, 1.0]]))
    target = np.array([1.0, 1.0, 0.0])
    ratio = nb_log_count_ratio(x, target, weights=np.ones(3), alpha=1.0, binary=True)
    # Presence counts + 1: positives (3, 1, 3) of 7, negatives (1, 2, 2) of 5.
    np.testing.assert_allclose(ratio, np.log([3 / 7 / (1 / 5), 1 / 7 / (2 / 5), 3 / 7 / (2 / 5)]))
    weighted = nb_log_count_ratio(x, target, weights=np.array([1.0, 1.0, 3.0]), binary=True)
    assert weighted[1] < ratio[1]  # a heavier negative row pulls its feature further down
    by_mass = nb_log_count_ratio(x, target, weights=np.ones(3), binary=False)
    assert by_mass[0] > ratio[0]  # the count of 2 counts twice without `binary`


def test_nb_scaling_folds_into_weights_over_the_raw_features(make_corpus: CorpusFactory) -> None:
    texts, labels = make_corpus()
    model = ToxicityModel(**SMALL)
    model.fit(texts, labels)
    x = model.word_.transform(texts)
    target = labels[:, 0]
    column, bias = model._fit_block(x, target, weights=np.ones(len(texts)), nb=True)
    ratio = nb_log_count_ratio(x, target, weights=np.ones(len(texts)))
    scaled = sp.csr_matrix(x.multiply(ratio))
    reference = LogisticRegression(C=model.C, solver="liblinear", random_state=0)
    reference.fit(scaled, target)
    np.testing.assert_allclose(x @ column + bias, reference.decision_function(scaled), atol=1e-4)


@pytest.mark.parametrize(
    "variant",
    [
        {"nb_scaling": False, "separate_word_char": False},
        {"separate_word_char": False, "nb_binary": False, "min_positives": 1},
        {"nb_scaling": False, "separate_word_char": True, "class_weight": "balanced"},
    ],
)
def test_every_fit_variant_scores_and_round_trips_its_params(
    make_corpus: CorpusFactory, variant: Variant
) -> None:
    texts, labels = make_corpus()
    model = ToxicityModel(**SMALL, **variant)
    model.fit(texts, labels)
    assert model.coef_.shape == (
        len(model.word_.vocabulary_) + len(model.char_.codes_),
        len(ATTRIBUTES),
    )
    assert model.score("you stupid idiot")["insult"] > model.score("thanks for the map")["insult"]
    params = model.get_params()
    assert ToxicityModel(**params).get_params() == params
    if params["nb_scaling"] and params["min_positives"] <= 1:
        assert model.nb_attributes_ == {
            a for a in ATTRIBUTES if np.nanmax(labels[:, ATTRIBUTES.index(a)]) > 0
        }
    assert {k: params[k] for k in variant} == variant


def test_separate_word_and_char_models_are_averaged(make_corpus: CorpusFactory) -> None:
    texts, labels = make_corpus()
    model = ToxicityModel(separate_word_char=True, min_positives=1, **SMALL)
    model.fit(texts, labels, calibration_texts=texts, calibration_labels=labels)
    n_word = len(model.word_.vocabulary_)
    x = model.word_.transform(texts)
    ratio = nb_log_count_ratio(x, labels[:, 0], weights=np.ones(len(texts)))
    word_alone = LogisticRegression(C=model.C, solver="liblinear", random_state=0)
    word_alone.fit(sp.csr_matrix(x.multiply(ratio)), labels[:, 0])
    np.testing.assert_allclose(
        model.coef_[:n_word, 0], 0.5 * ratio * word_alone.coef_[0], rtol=1e-3, atol=1e-5
    )
    word_only = model.word_.transform(texts) @ model.coef_[:n_word]
    char_only = model.char_.transform(texts) @ model.coef_[n_word:]
    # Both halves carry signal on their own: neither block was left at zero.
    toxic = labels[:, 0] == 1
    for half in (word_only[:, 0], char_only[:, 0]):
        assert half[toxic].mean() > half[~toxic].mean()


def test_nb_scaling_is_left_to_attributes_with_enough_positives(
    make_corpus: CorpusFactory,
) -> None:
    texts, labels = make_corpus()
    # 75 toxic and 25 insult rows in the corpus, fewer after the calibration split.
    model = ToxicityModel(min_positives=40, **SMALL).fit(texts, labels)
    assert model.nb_attributes_ == {"toxic"}
    plain = ToxicityModel(nb_scaling=False, **SMALL).fit(texts, labels)
    assert plain.nb_attributes_ == set()
    # Without NB the insult weights are the plain model's own.
    column = ATTRIBUTES.index("insult")
    np.testing.assert_allclose(model.coef_[:, column], plain.coef_[:, column], atol=1e-6)


def test_params_are_scikit_learn_params() -> None:
    model = ToxicityModel(C=2.0, word_ngram_range=(1, 3))
    params = model.get_params()
    assert params == {**ToxicityModel().get_params(), "C": 2.0, "word_ngram_range": (1, 3)}
    assert model.set_params(C=8.0, nb_scaling=False) is model
    assert (model.C, model.nb_scaling) == (8.0, False)
    assert model.get_params() == {**params, "C": 8.0, "nb_scaling": False}
    with pytest.raises(ValueError, match="Invalid parameter"):
        model.set_params(surprise=1)


def test_construction_stores_the_params_and_nothing_else() -> None:
    model = ToxicityModel(min_count=3)
    assert vars(model) == model.get_params()
    unfitted = clone(model)
    assert unfitted is not model and unfitted.get_params() == model.get_params()


def test_a_fitted_models_clone_is_unfitted_with_equal_params(model: ToxicityModel) -> None:
    fitted = {name for name in vars(model) if name.endswith("_")}
    assert {"coef_", "calibration_", "version_", "sha256_", "card_"} <= fitted
    unfitted = clone(model)
    assert unfitted.get_params() == model.get_params()
    assert vars(unfitted) == unfitted.get_params()  # no fitted attribute came along
    with pytest.raises(AttributeError):
        unfitted.predict_proba(["you idiot"])
