"""Toxicity classifier: text, model, explanations, evaluation, fairness, thresholds, artifacts.

Exceptions: `ArtifactError` (a model artifact cannot be trusted or read) and `DataError`
(a data file is missing or lacks its columns, a `ValueError`).
"""

from __future__ import annotations

from classifier.artifact import ArtifactError, load_default_model, load_model, save_model
from classifier.attributes import ATTRIBUTES
from classifier.data import Corpus, DataError, load_corpus
from classifier.evaluation import attribute_metrics, recommend_thresholds, threshold_table
from classifier.explain import Span
from classifier.fairness import BiasReport, identity_augmentation, identity_bias
from classifier.model import ToxicityModel
from classifier.normalize import normalize, normalize_text
from classifier.report import write_report
from classifier.thresholds import propose_thresholds
from classifier.training import train

__all__ = [
    "ATTRIBUTES",
    "ArtifactError",
    "BiasReport",
    "Corpus",
    "DataError",
    "Span",
    "ToxicityModel",
    "attribute_metrics",
    "identity_augmentation",
    "identity_bias",
    "load_corpus",
    "load_default_model",
    "load_model",
    "normalize",
    "normalize_text",
    "propose_thresholds",
    "recommend_thresholds",
    "save_model",
    "threshold_table",
    "train",
    "write_report",
]
