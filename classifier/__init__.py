"""Toxicity classifier: text, model, explanations, evaluation, fairness, thresholds, artifacts.

Exceptions: `ArtifactError` (a model artifact cannot be trusted or read) and `DataError`
(a data file is missing or lacks its columns, a `ValueError`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from classifier.attributes import ATTRIBUTES

# Bound now, not on first use: the function shares its module's name, and importing the
# module (as anything may) would otherwise leave the package attribute naming the module.
from classifier.normalize import normalize, normalize_text

if TYPE_CHECKING:
    from classifier.artifact import ArtifactError, load_default_model, load_model, save_model
    from classifier.data import Corpus, DataError, load_corpus
    from classifier.evaluation import attribute_metrics, recommend_thresholds, threshold_table
    from classifier.explain import Span
    from classifier.fairness import BiasReport, identity_augmentation, identity_bias
    from classifier.model import ToxicityModel
    from classifier.report import write_report
    from classifier.thresholds import propose_thresholds
    from classifier.training import train

# Each name is imported from its module on first use: a process that only scores must not
# pay for training's imports (scikit-learn alone is about 80 MB of a process).
_HOMES = {
    "ArtifactError": "artifact",
    "load_default_model": "artifact",
    "load_model": "artifact",
    "save_model": "artifact",
    "Corpus": "data",
    "DataError": "data",
    "load_corpus": "data",
    "attribute_metrics": "evaluation",
    "recommend_thresholds": "evaluation",
    "threshold_table": "evaluation",
    "Span": "explain",
    "BiasReport": "fairness",
    "identity_augmentation": "fairness",
    "identity_bias": "fairness",
    "ToxicityModel": "model",
    "write_report": "report",
    "propose_thresholds": "thresholds",
    "train": "training",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'classifier' has no attribute {name!r}")
    return getattr(importlib.import_module(f"classifier.{home}"), name)


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
