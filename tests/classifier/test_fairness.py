"""Identity-bias metrics on hand-made scores, the templates, and the augmentation rows."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from classifier import ATTRIBUTES, ToxicityModel
from classifier.fairness import (
    bnsp_auc,
    bpsn_auc,
    identity_augmentation,
    identity_bias,
    jigsaw_bias_score,
    power_mean,
    subgroup_auc,
    template_sentences,
    term_balancing_weights,
)
from classifier.identity_templates import (
    AUGMENTATION_TEMPLATES,
    EXTRA_AUGMENTATION_IDENTITIES,
    IDENTITIES,
    NEUTRAL_TEMPLATES,
    TOXIC_TEMPLATES,
)

TEXTS, TERMS, LABELS = template_sentences()
TOXIC_TEXTS = {t for t, label in zip(TEXTS, LABELS, strict=True) if label == 1}


def _flags_muslim(texts: Sequence[str]) -> np.ndarray:
    """Knows toxic from neutral (0.8 vs 0.1) but scores every mention of Muslims 0.9."""
    return np.asarray([0.9 if "Muslim" in t else 0.8 if t in TOXIC_TEXTS else 0.1 for t in texts])


def test_templates_cover_the_identities_the_issue_names() -> None:
    terms = {i.term for i in IDENTITIES}
    for needed in ("Muslim", "Jewish", "Russian", "Ukrainian", "gay", "transgender", "Black"):
        assert needed in terms
    assert len(IDENTITIES) >= 25
    assert len(NEUTRAL_TEMPLATES) >= 10 and len(TOXIC_TEMPLATES) >= 10
    assert len(TEXTS) == len(IDENTITIES) * (len(NEUTRAL_TEMPLATES) + len(TOXIC_TEMPLATES))


def test_templates_choose_a_or_an_by_sound() -> None:
    by_term = {i.term: i for i in IDENTITIES}
    assert by_term["immigrant"].a_person == "an immigrant"
    assert by_term["Ukrainian"].a_person == "a Ukrainian person"
    assert by_term["Asian"].a_person == "an Asian person"
    assert by_term["woman"].a_person == "a woman"


def test_scorer_that_flags_one_identity_gives_it_fpr_1_and_subgroup_auc_half() -> None:
    report = identity_bias(_flags_muslim, threshold=0.5)
    rows = {r["identity"]: r for r in report.rows}
    muslim = rows.pop("Muslim")
    assert muslim["fpr"] == 1.0
    assert muslim["subgroup_auc"] == 0.5
    assert muslim["bpsn_auc"] == 0.0  # its neutral mentions outscore all background abuse
    assert muslim["bnsp_auc"] == 1.0
    others = len(IDENTITIES) - 1
    for row in rows.values():
        assert row["fpr"] == 0.0 and row["subgroup_auc"] == 1.0 and row["bpsn_auc"] == 1.0
        # Muslim neutral sentences (0.9) sit in every other identity's background negatives.
        assert row["bnsp_auc"] == pytest.approx((others - 1) / others)
    assert report.over_limit() == ["Muslim"]
    assert report.power_means["bpsn_auc"] == 0.0
    assert report.power_means["subgroup_auc"] == pytest.approx(power_mean([0.5, *([1.0] * others)]))


def test_perfect_scorer_scores_1_everywhere() -> None:
    report = identity_bias(lambda texts: np.asarray([t in TOXIC_TEXTS for t in texts], float))
    assert report.overall_auc == 1.0 and report.final_score == 1.0
    assert report.over_limit() == []


def test_auc_functions_on_a_small_hand_made_case() -> None:
    labels = np.asarray([0, 1, 0, 1])
    scores = np.asarray([0.6, 0.7, 0.1, 0.5])
    subgroup = np.asarray([True, True, False, False])
    assert subgroup_auc(labels, scores, in_subgroup=subgroup) == 1.0
    # subgroup negative 0.6 > background 0.5
    assert bpsn_auc(labels, scores, in_subgroup=subgroup) == 0.0
    assert bnsp_auc(labels, scores, in_subgroup=subgroup) == 1.0
    other = np.asarray([True, False, True, False])
    assert subgroup_auc(labels, scores, in_subgroup=other) is None


def test_power_mean_leans_to_the_worst_value() -> None:
    assert power_mean([1.0, 1.0]) == pytest.approx(1.0)
    assert power_mean([0.5, 1.0]) == pytest.approx(((0.5**-5 + 1) / 2) ** (-1 / 5))
    assert power_mean([0.5, 1.0], p=1) == pytest.approx(0.75)
    assert power_mean([0.9, None, 0.9]) == pytest.approx(0.9)
    assert power_mean([0.0, 1.0]) == 0.0
    assert np.isnan(power_mean([None]))


def test_jigsaw_score_weights_overall_auc_a_quarter() -> None:
    perfect = jigsaw_bias_score(0.8, subgroup=[1.0], bpsn=[1.0], bnsp=[1.0])
    assert perfect == pytest.approx(0.25 * 0.8 + 0.75)
    mixed = jigsaw_bias_score(1.0, subgroup=[0.6], bpsn=[0.9], bnsp=[0.9])
    assert mixed == pytest.approx(0.25 + 0.25 * 2.4)


def test_model_report_has_hold_rate_and_accepts_real_background(model: ToxicityModel) -> None:
    report = identity_bias(
        model,
        threshold=0.5,
        hold_thresholds=dict.fromkeys(ATTRIBUTES, 0.5),
        background_texts=["you are a stupid idiot", "thanks for the edit", "unlabelled"],
        background_labels=[1, 0, np.nan],
    )
    assert report.n_sentences == len(TEXTS) + 2
    assert len(report.rows) == len(IDENTITIES)
    for row in report.rows:
        assert 0.0 <= row["fpr"] <= row["hold_rate"] <= 1.0
    with pytest.raises(ValueError, match="differ in length"):
        identity_bias(model, background_texts=["a"], background_labels=[])


def test_augmentation_is_neutral_deterministic_and_disjoint_from_the_evaluation() -> None:
    texts, labels, terms = identity_augmentation(random_state=0)
    phrases: dict[str, set[str]] = {}
    for identity in (*IDENTITIES, *EXTRA_AUGMENTATION_IDENTITIES):
        phrases.setdefault(identity.term, set()).update({identity.person, identity.people})
    assert len(terms) == len(texts)
    for text, term in zip(texts, terms, strict=True):
        assert any(p.lower() in text.lower() for p in phrases[term]), (text, term)
    assert labels.shape == (len(texts), len(ATTRIBUTES))
    assert not np.isnan(labels).any() and (labels == 0).all()
    assert len(texts) >= len(IDENTITIES) * len(AUGMENTATION_TEMPLATES)
    assert identity_augmentation(random_state=0)[0] == texts
    assert identity_augmentation(random_state=1)[0] != texts
    evaluation = {t.lower() for t in TEXTS}
    assert not evaluation & {t.lower() for t in texts}
    lowered = " ".join(texts).lower()
    assert all(i.person.lower() in lowered for i in IDENTITIES)
    frames = {t.split("{")[0] for t in NEUTRAL_TEMPLATES}
    assert not any(a.startswith(f) for a in AUGMENTATION_TEMPLATES for f in frames if f)


def test_term_balancing_adds_harmless_mentions_until_a_term_is_as_toxic_as_the_rest() -> None:
    # 2 toxic of 9 labelled rows: "gay" is toxic in both its mentions, so it needs
    # 2 / (2/9) - 2 = 7 weight of harmless mentions, shared by its 4 augmentation rows;
    # "Russian" is never toxic and keeps the floor.
    texts = ["you gay idiot", "GAYS are the worst", *["a Russian wrote this"] * 3, *["ok"] * 5]
    toxic = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, np.nan])
    weights = np.array([1.0] * 9 + [50.0])  # the unlabelled row counts for nothing
    out = term_balancing_weights(
        texts,
        toxic,
        weights=weights,
        augmentation_terms=["gay"] * 4 + ["Russian"] * 2 + ["man"],
        floor=0.5,
    )
    assert out[:4] == pytest.approx([(2 / (2 / 9) - 2) / 4] * 4)
    assert list(out[4:]) == [0.5, 0.5, 0.5]  # "man" never occurs, so no weight is "needed"
    with pytest.raises(ValueError, match="differ in length"):
        term_balancing_weights(
            texts, toxic[:3], weights=weights, augmentation_terms=["gay"], floor=1.0
        )
