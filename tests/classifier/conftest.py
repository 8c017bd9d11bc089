"""The classifier's fixtures: factories of the tiny synthetic corpus and of tiny models (the
fitted tiny model itself, `model` and `model_dir`, is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from classifier import ToxicityModel
from tests.factories import synthetic_corpus, tiny_model

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
