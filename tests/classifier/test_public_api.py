"""The public surface of `classifier`: exactly these names, each importable."""

from __future__ import annotations

import classifier

PUBLIC = [
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


def test_the_public_names_are_exactly_these() -> None:
    assert sorted(classifier.__all__) == PUBLIC
    assert len(set(classifier.__all__)) == len(classifier.__all__)


def test_every_public_name_imports() -> None:
    for name in PUBLIC:
        assert getattr(classifier, name, None) is not None, name
