"""Settings: thresholds from the environment are checked and merged with the defaults."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.core.settings import DEFAULT_THRESHOLDS, Settings


def test_partial_thresholds_change_only_what_they_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODERATION_THRESHOLDS", '{"toxic": 0.35}')
    thresholds = Settings().thresholds
    assert thresholds["toxic"] == 0.35
    assert thresholds["insult"] == DEFAULT_THRESHOLDS["insult"]
    assert set(thresholds) == set(DEFAULT_THRESHOLDS)


@pytest.mark.parametrize("value", ['{"toxicity": 0.5}', '{"toxic": 1.5}', '{"toxic": "high"}'])
def test_bad_thresholds_are_refused_at_start(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("MODERATION_THRESHOLDS", value)
    with pytest.raises(ValidationError, match="thresholds"):
        Settings()
