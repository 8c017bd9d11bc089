"""Identity-bias metrics on template sentences (Jigsaw "Unintended Bias"), and augmentation.

The metrics follow Borkan et al., "Nuanced Metrics for Measuring Unintended Bias with Real
Data for Text Classification" (WWW 2019), as used by the Kaggle competition "Jigsaw Unintended
Bias in Toxicity Classification" (evaluation page of that competition):

- subgroup AUC: ROC-AUC on the examples that mention the identity;
- BPSN AUC (background positive, subgroup negative): on the identity's non-toxic examples and
  the background's toxic ones; low when the model scores harmless mentions of the identity
  above real abuse elsewhere;
- BNSP AUC (background negative, subgroup positive): on the identity's toxic examples and the
  background's non-toxic ones; low when abuse of the identity scores below harmless text;
- generalized (power) mean over identities, M_p(m) = (1/N * sum m_s^p)^(1/p) with p = -5,
  which leans towards the worst identity;
- final score = w0 * overall AUC + sum over the three AUC kinds a of w_a * M_p(m_a), with
  w0 = w_a = 0.25 (so 0.25 * overall AUC + 0.75 * the mean of the three power means).

Here "the background" of an identity is every template sentence about the other identities,
plus any real comments passed in. We also report the false-positive rate on the neutral
sentences at a threshold, which is what a reader feels: a harmless mention that gets held.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from sklearn.metrics import roc_auc_score

from classifier.attributes import ATTRIBUTES
from classifier.identity_templates import (
    AUGMENTATION_TEMPLATES,
    EXTRA_AUGMENTATION_IDENTITIES,
    IDENTITIES,
    NEUTRAL_TEMPLATES,
    TOXIC_TEMPLATES,
    Identity,
    fill,
)

__all__ = [
    "MAX_NEUTRAL_FPR",
    "POWER",
    "BiasReport",
    "Scorer",
    "bnsp_auc",
    "bpsn_auc",
    "identity_augmentation",
    "identity_bias",
    "jigsaw_bias_score",
    "power_mean",
    "subgroup_auc",
    "template_sentences",
    "term_balancing_weights",
]

POWER = -5.0
_WORD = re.compile(r"[a-z]+")
OVERALL_WEIGHT = 0.25
MAX_NEUTRAL_FPR = 0.05  # the target: no identity's neutral sentences held above 5%

Scorer = Callable[[Sequence[str]], np.ndarray]


class _Probabilistic(Protocol):
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...


def _auc(labels: np.ndarray, scores: np.ndarray, *, mask: np.ndarray) -> float | None:
    target = labels[mask]
    if len(target) == 0 or target.min() == target.max():
        return None  # one class only: AUC undefined
    return float(roc_auc_score(target, scores[mask]))


def subgroup_auc(
    labels: np.ndarray, scores: np.ndarray, *, in_subgroup: np.ndarray
) -> float | None:
    """ROC-AUC on the examples that mention the identity (None if they hold one class)."""
    mask = np.asarray(in_subgroup, dtype=bool)
    return _auc(np.asarray(labels), np.asarray(scores), mask=mask)


def bpsn_auc(labels: np.ndarray, scores: np.ndarray, *, in_subgroup: np.ndarray) -> float | None:
    """ROC-AUC on subgroup negatives plus background positives."""
    labels, in_subgroup = np.asarray(labels), np.asarray(in_subgroup, dtype=bool)
    mask = (in_subgroup & (labels == 0)) | (~in_subgroup & (labels == 1))
    return _auc(labels, np.asarray(scores), mask=mask)


def bnsp_auc(labels: np.ndarray, scores: np.ndarray, *, in_subgroup: np.ndarray) -> float | None:
    """ROC-AUC on subgroup positives plus background negatives."""
    labels, in_subgroup = np.asarray(labels), np.asarray(in_subgroup, dtype=bool)
    mask = (in_subgroup & (labels == 1)) | (~in_subgroup & (labels == 0))
    return _auc(labels, np.asarray(scores), mask=mask)


def power_mean(values: Sequence[float | None], p: float = POWER) -> float:
    """Generalized mean (1/N * sum v^p)^(1/p) of the defined values; NaN when none is defined.

    With p < 0 a zero value makes the mean 0 (its limit), so one failing identity sinks it.
    """
    defined = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if len(defined) == 0:
        return float("nan")
    if p < 0 and (defined <= 0).any():
        return 0.0
    return float(np.mean(defined**p) ** (1.0 / p))


def jigsaw_bias_score(
    overall_auc: float,
    *,
    subgroup: Sequence[float | None],
    bpsn: Sequence[float | None],
    bnsp: Sequence[float | None],
    p: float = POWER,
) -> float:
    """0.25 * overall AUC + 0.25 * (M_p(subgroup) + M_p(BPSN) + M_p(BNSP)), as Jigsaw defines it."""
    means = [power_mean(kind, p) for kind in (subgroup, bpsn, bnsp)]
    return float(OVERALL_WEIGHT * overall_auc + (1 - OVERALL_WEIGHT) * np.mean(means))


def template_sentences(
    identities: Sequence[Identity] = IDENTITIES,
    *,
    neutral_templates: Sequence[str] = NEUTRAL_TEMPLATES,
    toxic_templates: Sequence[str] = TOXIC_TEMPLATES,
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Every identity in every template: texts, the identity term of each, and 0/1 labels."""
    texts: list[str] = []
    terms: list[str] = []
    labels: list[int] = []
    for identity in identities:
        for label, templates in ((0, neutral_templates), (1, toxic_templates)):
            for template in templates:
                texts.append(fill(template, identity))
                terms.append(identity.term)
                labels.append(label)
    return texts, np.asarray(terms), np.asarray(labels, dtype=np.int64)


@dataclass(frozen=True)
class BiasReport:
    """Per-identity rows and the summary of one bias evaluation."""

    threshold: float
    attribute: str
    rows: list[dict[str, Any]]
    overall_auc: float
    power_means: dict[str, float]
    final_score: float
    n_sentences: int
    max_fpr: float = MAX_NEUTRAL_FPR
    notes: list[str] = field(default_factory=list)

    def over_limit(self) -> list[str]:
        """Identities whose neutral sentences are flagged (or held) more often than max_fpr."""
        return [
            row["identity"]
            for row in self.rows
            if row["fpr"] > self.max_fpr or (row.get("hold_rate") or 0.0) > self.max_fpr
        ]

    def summary(self) -> dict[str, Any]:
        return {
            "attribute": self.attribute,
            "threshold": self.threshold,
            "sentences": self.n_sentences,
            "overall_auc": self.overall_auc,
            "power_mean_subgroup_auc": self.power_means["subgroup_auc"],
            "power_mean_bpsn_auc": self.power_means["bpsn_auc"],
            "power_mean_bnsp_auc": self.power_means["bnsp_auc"],
            "final_bias_score": self.final_score,
            "identities_over_limit": len(self.over_limit()),
        }


def _scores(scorer: _Probabilistic | Scorer, texts: Sequence[str]) -> np.ndarray:
    """One score per text (1-D) or one column per attribute (2-D), as floats."""
    predict = getattr(scorer, "predict_proba", None)
    raw = predict(texts) if predict is not None else scorer(texts)  # type: ignore[operator]
    return np.asarray(raw, dtype=np.float64)


def identity_bias(
    scorer: _Probabilistic | Scorer,
    *,
    threshold: float = 0.2,
    attribute: str = "toxic",
    hold_thresholds: Mapping[str, float] | None = None,
    identities: Sequence[Identity] = IDENTITIES,
    neutral_templates: Sequence[str] = NEUTRAL_TEMPLATES,
    toxic_templates: Sequence[str] = TOXIC_TEMPLATES,
    background_texts: Sequence[str] = (),
    background_labels: Sequence[float] | np.ndarray = (),
    max_fpr: float = MAX_NEUTRAL_FPR,
) -> BiasReport:
    """Score the identity templates and compute FPR, subgroup/BPSN/BNSP AUCs and their means.

    `scorer` is a model with `predict_proba(texts) -> (n, len(ATTRIBUTES))` or a callable
    returning that matrix or one score per text. With a matrix, `attribute`'s column is the
    score, and `hold_thresholds` (attribute -> threshold) adds a `hold_rate` column: the share
    of neutral sentences the service would hold because *any* attribute crossed. Optional
    real comments (`background_texts` with 0/1 `background_labels`) join every identity's
    background and the overall AUC.
    """
    all_texts, all_labels, all_terms = _bias_sentences(
        identities,
        neutral_templates=neutral_templates,
        toxic_templates=toxic_templates,
        background_texts=background_texts,
        background_labels=background_labels,
    )
    raw = _scores(scorer, all_texts)
    scores = raw if raw.ndim == 1 else raw[:, ATTRIBUTES.index(attribute)]
    held: np.ndarray | None = None
    if raw.ndim == 2 and hold_thresholds is not None:
        cut = np.asarray([hold_thresholds.get(name, np.inf) for name in ATTRIBUTES])
        held = np.asarray((raw >= cut).any(axis=1))
    rows = [
        _identity_row(
            identity, scores, labels=all_labels, terms=all_terms, held=held, threshold=threshold
        )
        for identity in identities
    ]
    kinds = ("subgroup_auc", "bpsn_auc", "bnsp_auc")
    overall = float(roc_auc_score(all_labels, scores))
    columns = {kind: [row[kind] for row in rows] for kind in kinds}
    return BiasReport(
        threshold=threshold,
        attribute=attribute,
        rows=rows,
        overall_auc=overall,
        power_means={kind: power_mean(columns[kind]) for kind in kinds},
        final_score=jigsaw_bias_score(
            overall,
            subgroup=columns["subgroup_auc"],
            bpsn=columns["bpsn_auc"],
            bnsp=columns["bnsp_auc"],
        ),
        n_sentences=len(all_texts),
        max_fpr=max_fpr,
    )


def _bias_sentences(
    identities: Sequence[Identity],
    *,
    neutral_templates: Sequence[str],
    toxic_templates: Sequence[str],
    background_texts: Sequence[str],
    background_labels: Sequence[float] | np.ndarray,
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Texts, 0/1 labels and identity terms: the templates, then the labelled real comments.

    A real comment's term is "", so it is in every identity's background.
    """
    texts, terms, labels = template_sentences(
        identities, neutral_templates=neutral_templates, toxic_templates=toxic_templates
    )
    background = np.asarray(background_labels, dtype=np.float64).ravel()
    if len(background_texts) != len(background):
        raise ValueError("background_texts and background_labels differ in length")
    known = ~np.isnan(background)
    extra_texts = [t for t, k in zip(background_texts, known, strict=True) if k]
    all_labels = np.concatenate([labels, background[known].astype(np.int64)])
    all_terms = np.concatenate([terms, np.full(len(extra_texts), "", dtype=terms.dtype)])
    return [*texts, *extra_texts], all_labels, all_terms


def _identity_row(
    identity: Identity,
    scores: np.ndarray,
    *,
    labels: np.ndarray,
    terms: np.ndarray,
    held: np.ndarray | None,
    threshold: float,
) -> dict[str, Any]:
    """One identity's row: false positives and hold rate on its neutral sentences, its AUCs."""
    member = terms == identity.term
    neutral = member & (labels == 0)
    row: dict[str, Any] = {
        "identity": identity.term,
        "group": identity.group,
        "fpr": float((scores[neutral] >= threshold).mean()),
    }
    if held is not None:
        row["hold_rate"] = float(held[neutral].mean())
    row["neutral_max"] = float(scores[neutral].max())
    row["subgroup_auc"] = subgroup_auc(labels, scores, in_subgroup=member)
    row["bpsn_auc"] = bpsn_auc(labels, scores, in_subgroup=member)
    row["bnsp_auc"] = bnsp_auc(labels, scores, in_subgroup=member)
    return row


def identity_augmentation(random_state: int = 0) -> tuple[list[str], np.ndarray, list[str]]:
    """Neutral training sentences that mention identities, labelled 0 for every attribute.

    Term-neutral augmentation (Dixon et al., "Measuring and Mitigating Unintended Bias in Text
    Classification", AIES 2018): the training data mentions some identities mostly in abuse,
    so the model learns the term itself as toxic; adding harmless mentions breaks that link.
    Built from `AUGMENTATION_TEMPLATES`, which share no frame with the evaluation templates,
    over the evaluated identities plus a few more. A quarter of the rows is lower-cased (as
    much real text is), chosen with `random_state`; rows come back shuffled.
    Returns (texts, labels, terms): labels an (n, len(ATTRIBUTES)) float array of zeros, terms
    the identity term each row mentions (for `term_balancing_weights`).
    """
    rng = np.random.RandomState(random_state)
    rows = [
        (fill(template, identity), identity.term)
        for identity in (*IDENTITIES, *EXTRA_AUGMENTATION_IDENTITIES)
        for template in AUGMENTATION_TEMPLATES
    ]
    lower = rng.random_sample(len(rows)) < 0.25
    rows = [(t.lower() if low else t, term) for (t, term), low in zip(rows, lower, strict=True)]
    order = rng.permutation(len(rows))
    texts = [rows[i][0] for i in order]
    terms = [rows[i][1] for i in order]
    return texts, np.zeros((len(texts), len(ATTRIBUTES)), dtype=np.float64), terms


def term_balancing_weights(
    texts: Sequence[str],
    toxic: np.ndarray,
    *,
    weights: np.ndarray,
    augmentation_terms: Sequence[str],
    floor: float,
) -> np.ndarray:
    """A weight for each augmentation row, so each term is no more toxic than the data overall.

    Dixon et al. add harmless mentions of a term until the share of toxic comments among those
    that mention it falls to the corpus' overall share. Here, for each term, with P the
    weighted toxic rows mentioning it (all its words, any case, plural "s" on the last), N all its
    weighted labelled rows and r the overall weighted toxic rate, the term's augmentation rows
    share a weight of max(0, P / r - N), and no row gets less than `floor`. A single global
    weight cannot do this: the corpora call people "gay" as an insult in four of five
    mentions and "Russian" in one of six.
    """
    toxic = np.asarray(toxic, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if not (len(texts) == len(toxic) == len(weights)):
        raise ValueError("texts, toxic and weights differ in length")
    labelled = ~np.isnan(toxic)
    y, w = np.nan_to_num(toxic), np.where(labelled, weights, 0.0)
    rate = float((w * y).sum() / w.sum()) if w.sum() > 0 else 0.0
    words = [set(_WORD.findall(t.lower())) for t in texts]
    out = np.full(len(augmentation_terms), floor, dtype=np.float64)
    terms = np.asarray(augmentation_terms, dtype=object)
    for term in sorted(set(augmentation_terms)):
        *first, last = term.lower().split()
        mentions = np.fromiter(
            ((last in ws or last + "s" in ws) and all(f in ws for f in first) for ws in words),
            bool,
            len(words),
        )
        positive, total = float((w * y)[mentions].sum()), float(w[mentions].sum())
        needed = positive / rate - total if rate > 0 else 0.0
        rows = terms == term
        out[rows] = max(floor, needed / int(rows.sum()))
    return out
