"""The model a process scores with: loaded once, from the package or a configured directory."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from classifier import ATTRIBUTES, ToxicityModel, load_default_model, load_model

__all__ = ["ModelScorer", "load_scorer"]


class ModelScorer:
    """A thin adapter that gives deciding the few things it needs of a model."""

    attributes: Sequence[str] = ATTRIBUTES

    def __init__(self, model: ToxicityModel) -> None:
        self.model = model
        self.version: str = model.version_

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.predict_proba(texts)

    def explain_many(
        self, text: str, attributes: Sequence[str], top_k: int = 5
    ) -> dict[str, list[Any]]:
        return self.model.explain_many(text, attributes, top_k=top_k)

    def score(self, texts: Sequence[str], *, explain: bool) -> list[dict[str, Any]]:
        results = []
        for text, row in zip(texts, self.predict_proba(texts), strict=True):
            scores = {a: round(float(p), 4) for a, p in zip(self.attributes, row, strict=True)}
            result: dict[str, Any] = {"scores": scores}
            if explain:
                top = max(scores, key=lambda a: scores[a])
                result["spans"] = [
                    {"text": s.text, "start": s.start, "end": s.end, "weight": float(s.weight)}
                    for s in self.model.explain(text, attribute=top, top_k=5)
                ]
            results.append(result)
        return results


def load_scorer(model_dir: Path | None) -> ModelScorer:
    return ModelScorer(load_model(model_dir) if model_dir else load_default_model())
