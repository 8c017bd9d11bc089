"""Shared fixtures: a tiny synthetic corpus and a model fitted on it in well under a second."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from classifier import ATTRIBUTES, ToxicityModel, save_model

NAN = np.nan
CIVIL = [
    "thanks for the helpful edit on the article",
    "i agree with your point about the history section",
    "the sources in this paragraph look reliable to me",
    "could you add a citation for the population figure",
    "great work on the new map of the region",
    "please see the talk page before reverting",
    "the peace talks article needs a better summary",
    "welcome and thank you for your contributions",
    "i moved the paragraph to the economy section",
    "nice photo, the caption explains it well",
]
INSULTS = [
    "you are a stupid idiot",
    "shut up you idiot",
    "what an idiot you are",
    "only an idiot would write this",
    "you idiot, read the sources",
]
OBSCENE = ["this is crap and shit", "what the shit is this crap", "shit edit, total crap"]
THREATS = ["i will hurt you badly", "i am going to hurt you", "watch out or i will hurt you"]


def synthetic_corpus() -> tuple[list[str], np.ndarray]:
    """About 100 labelled sentences; `threat` is left unlabelled (NaN) on a third of them."""
    texts: list[str] = []
    rows: list[list[float]] = []
    suffixes = ["", " today", " again", " please", " here"]
    groups: list[tuple[list[str], list[float]]] = [
        (CIVIL, [0, 0, 0, 0, 0, 0]),
        (INSULTS, [1, 0, 0, 0, 1, 0]),
        (OBSCENE, [1, 0, 1, 0, 0, 0]),
        (THREATS, [1, 1, 0, 1, 0, 0]),
    ]
    for group, row in groups:
        for suffix, text in itertools.product(suffixes, group):
            texts.append(text + suffix)
            rows.append(row)
    labels = np.asarray(rows, dtype=np.float64)
    labels[::3, ATTRIBUTES.index("threat")] = NAN
    return texts, labels


def tiny_model(random_state: int = 0) -> ToxicityModel:
    texts, labels = synthetic_corpus()
    model = ToxicityModel(
        word_max_features=2000,
        char_max_features=5000,
        min_count=1,
        C=10.0,
        calibration_fraction=0.25,
        n_jobs=1,
        random_state=random_state,
    )
    return model.fit(texts, labels)


CorpusFactory = Callable[[], tuple[list[str], np.ndarray]]
ModelFactory = Callable[[int], ToxicityModel]


@pytest.fixture(scope="session")
def make_corpus() -> CorpusFactory:
    """Builds a fresh copy of the synthetic corpus (tests may edit its labels)."""
    return synthetic_corpus


@pytest.fixture(scope="session")
def make_model() -> ModelFactory:
    """Fits a tiny model with the given random_state."""
    return tiny_model


@pytest.fixture(scope="session")
def model() -> ToxicityModel:
    return tiny_model()


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory, model: ToxicityModel) -> Path:
    return save_model(model, tmp_path_factory.mktemp("model"))
