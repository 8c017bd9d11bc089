"""The model a process scores with: loaded once, from the package or a configured directory."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from classifier.artifact import load_default_fitted, load_fitted
from classifier.attributes import ATTRIBUTES
from classifier.fitted import FittedToxicity
from classifier.located import Featurized, Located
from service.core.memory import return_freed_memory

__all__ = ["REMEMBERED_BATCH", "ModelScorer", "load_scorer", "scorer_from"]


# The largest batch whose featurisation is kept for explaining its held comments. Keeping
# it costs about 40 kB a news comment (2.5 MB at most); a worker's batches hold 32 by
# default (`score_batch_size`), and a larger batch is scored as before, without it.
REMEMBERED_BATCH = 64


class ModelScorer:
    """A thin adapter that gives deciding the few things it needs of a model.

    Deciding scores a batch, then explains each held comment of it: the adapter keeps the
    last batch's featurisation so an explanation reuses what scoring found (a held news
    comment's explanation: 0.29 ms featurising it again, 0.2 ms reusing it). What it keeps
    is a pure function of the text, so another thread replacing it at any moment can only
    make an explanation featurise again, never explain a text with another's n-grams.
    """

    attributes: Sequence[str] = ATTRIBUTES

    def __init__(self, model: FittedToxicity) -> None:
        self.model = model
        self.version: str = model.version_
        self._last_batch: Featurized | None = None

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str) or not 0 < len(texts) <= REMEMBERED_BATCH:
            return self.model.predict_proba(texts)
        featurized = self.model.featurize(texts)
        self._last_batch = featurized
        return self.model.predict_proba_featurized(featurized)

    def _located(self, text: str) -> tuple[Located, Located] | None:
        last = self._last_batch
        return last.located(text) if last is not None else None

    def explain_many(
        self, text: str, attributes: Sequence[str], top_k: int = 5
    ) -> dict[str, list[Any]]:
        located = self._located(text)
        return self.model.explain_many(text, attributes, top_k=top_k, located=located)

    def score(self, texts: Sequence[str], *, explain: bool) -> list[dict[str, Any]]:
        results = []
        for text, row in zip(texts, self.predict_proba(texts), strict=True):
            scores = {a: round(float(p), 4) for a, p in zip(self.attributes, row, strict=True)}
            result: dict[str, Any] = {"scores": scores}
            if explain:
                top = max(scores, key=lambda a: scores[a])
                result["spans"] = [
                    {"text": s.text, "start": s.start, "end": s.end, "weight": float(s.weight)}
                    for s in self.model.explain(
                        text, attribute=top, top_k=5, located=self._located(text)
                    )
                ]
            results.append(result)
        return results


def load_scorer(model_dir: Path | None) -> ModelScorer:
    return scorer_from(model_dir) if model_dir else _trimmed(ModelScorer(load_default_fitted()))


def scorer_from(directory: Path, *, expected_sha256: str | None = None) -> ModelScorer:
    """The artifact in `directory`, verified (against `expected_sha256` too, when given)."""
    return _trimmed(ModelScorer(load_fitted(directory, expected_sha256=expected_sha256)))


def _trimmed(scorer: ModelScorer) -> ModelScorer:
    return_freed_memory()  # the loader's buffers: about 23 MB of RSS otherwise
    return scorer
