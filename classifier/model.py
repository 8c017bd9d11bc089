"""The multi-label toxicity model: word + char TF-IDF, NB-scaled logistic regressions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from inspect import signature
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, MultiOutputMixin
from sklearn.linear_model import LogisticRegression
from sklearn.utils import Tags

from classifier.attributes import ATTRIBUTES
from classifier.features import CharNgramFeaturizer, WordNgramFeaturizer, tfidf_weight
from classifier.fitted import FittedToxicity
from classifier.normalize import normalize_text

__all__ = ["Progress", "ToxicityModel", "json_params", "nb_log_count_ratio"]

Progress = Callable[[str, float], None]
_UNSAVED = "tfidf-lr-unsaved"


def nb_log_count_ratio(
    x: sp.csr_matrix,
    target: np.ndarray,
    *,
    weights: np.ndarray,
    alpha: float = 1.0,
    binary: bool = True,
) -> np.ndarray:
    """NB-SVM's log-count ratio per feature: log of (share among positives / among negatives).

    Wang & Manning (2012): scaling features by it before a linear model lets the model start
    from naive Bayes evidence. With `binary` a row counts a feature once, however often it
    occurs. Sums are weighted by `weights`; `alpha` smooths features unseen in one class.
    """
    if binary:
        x = sp.csr_matrix((np.ones_like(x.data), x.indices, x.indptr), shape=x.shape)
    positive = target == 1
    p = np.asarray(x[positive].T @ weights[positive]).ravel() + alpha
    q = np.asarray(x[~positive].T @ weights[~positive]).ravel() + alpha
    ratio: np.ndarray = np.log((p / p.sum()) / (q / q.sum())).astype(np.float32)
    return ratio


def _scale_columns(x: sp.csr_matrix, scale: np.ndarray) -> sp.csr_matrix:
    """x @ diag(scale) sharing x's index arrays (copies only the values)."""
    data = x.data * scale[x.indices].astype(x.data.dtype)
    return sp.csr_matrix((data, x.indices, x.indptr), shape=x.shape)


def _fit_platt(decision: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """Platt scaling: p = sigmoid(a * decision + b) fitted by 1-D logistic regression."""
    if len(np.unique(target)) < 2:
        return 1.0, 0.0  # nothing to calibrate against; keep the raw logistic output
    platt = LogisticRegression(C=1e4, solver="lbfgs", max_iter=1000)
    platt.fit(decision.reshape(-1, 1), target)
    return float(platt.coef_[0, 0]), float(platt.intercept_[0])


# Not a ClassifierMixin: it has no `predict` or `classes_`, and its `score` scores one comment
# rather than measuring accuracy. MultiOutputMixin: the target is the (n, 6) label matrix.
class ToxicityModel(MultiOutputMixin, BaseEstimator, FittedToxicity):
    """Scores comments for the six ATTRIBUTES with calibrated probabilities.

    A scikit-learn estimator: `__init__` stores the parameters, so `get_params`,
    `set_params` and `sklearn.base.clone` work; `fit` (or `classifier.artifact.load_model`)
    sets the state, whose names end in `_`. Labels are a float (n, 6) array where NaN means
    "not labelled for this attribute"; each attribute is trained only on rows labelled for it.
    Besides the weights, that state holds the artifact identity `version_` and `sha256_`
    (set when the model is saved or loaded; "tfidf-lr-unsaved" and "" after `fit`) and the
    model card `card_` (provenance and metrics, filled by `classifier.training.train`).

    An attribute with at least `min_positives` positive training rows gets the full recipe:
    with `nb_scaling` its TF-IDF features are scaled by their naive-Bayes log-count ratio
    before its logistic regression (NB-LR; the ratio counts feature presence when
    `nb_binary`, TF-IDF mass otherwise, smoothed by `nb_alpha`), and with
    `separate_word_char` the word and the char features get one regression each whose
    log-odds are averaged. A rarer attribute gets one plain regression over all features:
    with few positives the NB ratio is noise, and cross-validation showed NB-LR losing to
    plain LR on severe_toxic, threat and identity_hate. Everything folds into one weight
    matrix `coef_` over the raw TF-IDF features, so inference, explanations and the
    artifact are the same for every variant.
    """

    def __init__(
        self,
        *,
        word_ngram_range: tuple[int, int] = (1, 2),
        word_max_features: int = 200_000,
        char_ngram_range: tuple[int, int] = (2, 5),
        char_max_features: int = 300_000,
        min_count: int = 2,
        C: float = 4.0,
        class_weight: str | None = None,
        nb_scaling: bool = True,
        nb_alpha: float = 1.0,
        nb_binary: bool = True,
        min_positives: int = 1500,
        separate_word_char: bool = True,
        max_iter: int = 200,
        calibration_fraction: float = 0.1,
        n_jobs: int = 2,
        random_state: int = 0,
    ) -> None:
        self.word_ngram_range = word_ngram_range
        self.word_max_features = word_max_features
        self.char_ngram_range = char_ngram_range
        self.char_max_features = char_max_features
        self.min_count = min_count
        self.C = C
        self.class_weight = class_weight
        self.nb_scaling = nb_scaling
        self.nb_alpha = nb_alpha
        self.nb_binary = nb_binary
        self.min_positives = min_positives
        self.separate_word_char = separate_word_char
        self.max_iter = max_iter
        self.calibration_fraction = calibration_fraction
        self.n_jobs = n_jobs
        self.random_state = random_state

    if TYPE_CHECKING:  # BaseEstimator's, which ships no types

        def get_params(self, deep: bool = True) -> dict[str, Any]: ...

        def set_params(self, **params: Any) -> Self: ...

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        # Comments in, not a numeric matrix; out, always the six attributes' label matrix.
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.target_tags.required = True
        tags.target_tags.single_output = False
        return tags

    # -- fitting --------------------------------------------------------------------------
    def fit(
        self,
        texts: Sequence[str],
        labels: np.ndarray,
        *,
        sample_weight: np.ndarray | None = None,
        calibration_texts: Sequence[str] | None = None,
        calibration_labels: np.ndarray | None = None,
        progress: Progress | None = None,
    ) -> ToxicityModel:
        """Learn features, per-attribute weights and Platt calibration; return self.

        Calibration needs rows at the prevalence the model will meet. Pass them as
        `calibration_texts`/`calibration_labels`; otherwise a random `calibration_fraction`
        of the training rows is held out for it. `sample_weight` (n,) scales each row's loss,
        e.g. to let an off-domain corpus count less.
        """
        report = progress or (lambda _stage, _fraction: None)
        labels = np.asarray(labels, dtype=np.float64)
        if labels.shape != (len(texts), len(ATTRIBUTES)):
            raise ValueError(f"labels must have shape ({len(texts)}, {len(ATTRIBUTES)})")
        texts = list(texts)
        weights = np.ones(len(texts)) if sample_weight is None else np.asarray(sample_weight)
        if weights.shape != (len(texts),):
            raise ValueError(f"sample_weight must have shape ({len(texts)},)")
        if calibration_texts is None:
            fit_idx, cal_idx = self._calibration_split(len(texts))
            calibration_texts = [texts[i] for i in cal_idx]
            calibration_labels = labels[cal_idx]
            texts, labels = [texts[i] for i in fit_idx], labels[fit_idx]
            weights = weights[fit_idx]
        if calibration_labels is None:
            raise ValueError("calibration_texts given without calibration_labels")

        report("normalising text", 0.0)
        blocks = self._fit_features([normalize_text(t) for t in texts], report)
        report("logistic regressions", 0.45)
        self._fit_linear(blocks, labels, weights=weights, report=report)
        report("calibration", 0.95)
        self._fit_calibration(calibration_texts, calibration_labels)
        self.version_, self.sha256_ = _UNSAVED, ""
        self.card_ = {}
        report("done", 1.0)
        return self

    def _calibration_split(self, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
        """(fit rows in order, calibration rows): a random `calibration_fraction` held out."""
        rng = np.random.RandomState(self.random_state)
        order = rng.permutation(n_rows)
        n_cal = max(1, round(n_rows * self.calibration_fraction))
        return np.sort(order[n_cal:]), order[:n_cal]

    def _fit_features(self, normalized: list[str], report: Progress) -> list[sp.csr_matrix]:
        """Learn the word and char vocabularies; return the word and char TF-IDF blocks."""
        report("word n-grams", 0.05)
        self.word_ = WordNgramFeaturizer(
            ngram_range=self.word_ngram_range,
            max_features=self.word_max_features,
            min_count=self.min_count,
        )
        word_x = tfidf_weight(self.word_.fit_counts(normalized), self.word_.idf_)
        report("char n-grams", 0.15)
        self.char_ = CharNgramFeaturizer(
            ngram_range=self.char_ngram_range,
            max_features=self.char_max_features,
            min_count=self.min_count,
        )
        char_x = tfidf_weight(self.char_.fit_counts(normalized), self.char_.idf_)
        # float64, as liblinear reads it: a float32 copy would be converted back per fit.
        return [word_x, char_x]

    def _fit_calibration(self, texts: Sequence[str], labels: np.ndarray) -> None:
        """Platt-scale each attribute's log-odds on the rows labelled for it."""
        decision = self.decision_function(texts)
        self.calibration_ = np.zeros((len(ATTRIBUTES), 2))
        for j in range(len(ATTRIBUTES)):
            known = ~np.isnan(labels[:, j])
            self.calibration_[j] = _fit_platt(decision[known, j], labels[known, j])
        self.n_calibration_rows_ = len(texts)

    def _fit_block(
        self, x: sp.csr_matrix, target: np.ndarray, *, weights: np.ndarray, nb: bool
    ) -> tuple[np.ndarray, float]:
        """One attribute's weights over the raw features of `x` (NB ratio folded in if `nb`)."""
        ratio = None
        if nb:
            ratio = nb_log_count_ratio(
                x, target, weights=weights, alpha=self.nb_alpha, binary=self.nb_binary
            )
            x = _scale_columns(x, ratio)
        lr = LogisticRegression(
            C=self.C,
            class_weight=self.class_weight,
            solver="liblinear",
            max_iter=self.max_iter,
            random_state=self.random_state,
        )
        lr.fit(x, target, sample_weight=weights)
        column = lr.coef_[0].astype(np.float32)
        if ratio is not None:
            column *= ratio  # (x * r) . w == x . (r * w)
        return column, float(lr.intercept_[0])

    def _fit_linear(
        self,
        blocks: list[sp.csr_matrix],
        labels: np.ndarray,
        *,
        weights: np.ndarray,
        report: Progress,
    ) -> None:
        """Fit every attribute's regressions and fold them into `coef_` and `intercept_`."""
        widths = [b.shape[1] for b in blocks]
        starts = np.cumsum([0, *widths])
        coef = np.zeros((int(starts[-1]), len(ATTRIBUTES)), dtype=np.float32)
        intercept = np.zeros(len(ATTRIBUTES))
        known = ~np.isnan(labels)
        self.n_train_rows_ = known.sum(axis=0).astype(np.int64)
        positives = np.nansum(labels, axis=0)
        rich = positives >= self.min_positives
        self.nb_attributes_ = {a for a, r in zip(ATTRIBUTES, rich, strict=True) if r}
        if not self.nb_scaling:
            self.nb_attributes_ = set()
        # A task fits one attribute on some of the blocks; its log-odds count with `share`.
        tasks: list[tuple[int, tuple[int, ...], float]] = []
        for j in range(len(ATTRIBUTES)):
            if self.separate_word_char and rich[j]:
                tasks += [(j, (k,), 1.0 / len(blocks)) for k in range(len(blocks))]
            else:
                tasks.append((j, tuple(range(len(blocks))), 1.0))

        def fit_one(task: tuple[int, tuple[int, ...], float]) -> tuple[np.ndarray, float]:
            j, which, _ = task
            rows = known[:, j]
            target = labels[rows, j]
            width = sum(widths[k] for k in which)
            if len(np.unique(target)) < 2:
                # A constant attribute: a bias-only model that always says the constant.
                value = float(target[0]) if len(target) else 0.0
                return np.zeros(width, dtype=np.float32), 10.0 if value else -10.0
            # Row subsets and stacking copy the matrix; skip both when they change nothing.
            parts = [blocks[k] if rows.all() else blocks[k][rows] for k in which]
            x = parts[0] if len(parts) == 1 else sp.hstack(parts, format="csr")
            nb = ATTRIBUTES[j] in self.nb_attributes_
            return self._fit_block(x, target, weights=weights[rows], nb=nb)

        done = 0
        # liblinear releases the GIL, so threads give real parallelism without copying x.
        with ThreadPoolExecutor(max_workers=max(1, self.n_jobs)) as pool:
            for (j, which, share), (column, bias) in zip(
                tasks, pool.map(fit_one, tasks), strict=True
            ):
                first = int(starts[which[0]])
                coef[first : first + len(column), j] = share * column
                intercept[j] += share * bias
                done += 1
                report(f"logistic regression: {ATTRIBUTES[j]}", 0.45 + 0.5 * done / len(tasks))
        self.coef_ = coef
        self.intercept_ = intercept


def json_params(model: ToxicityModel) -> dict[str, Any]:
    """`model`'s parameters as artifacts and model cards store them.

    In the constructor's order (the card lists them so) and with the n-gram ranges as JSON
    lists, which `classifier.artifact` turns back into tuples when it loads a model.
    """
    params = model.get_params(deep=False)
    return {
        name: list(params[name]) if isinstance(params[name], tuple) else params[name]
        for name in signature(type(model)).parameters
    }
