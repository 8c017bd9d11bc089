"""The default policy: hold at or above a threshold, hold other languages, and say why."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.core.settings import Settings
from service.rules.language import LanguageGuess
from service.rules.policy import apply_policy, language_verdict, policy_for_site

DEFAULTS = {"toxic": 0.5, "insult": 0.6, "threat": 0.3}


def test_score_at_the_threshold_is_held() -> None:
    verdict = apply_policy(
        policy_for_site(DEFAULTS, {}), {"toxic": 0.5, "insult": 0.1, "threat": 0}
    )
    assert verdict.action == "hold"
    assert verdict.status == "held"
    assert verdict.reasons == [
        {"code": "attribute_over_threshold", "attribute": "toxic", "score": 0.5, "threshold": 0.5}
    ]


def test_every_crossed_attribute_is_a_reason_highest_first() -> None:
    scores = {"toxic": 0.7, "insult": 0.9, "threat": 0.31}
    verdict = apply_policy(policy_for_site(DEFAULTS, {}), scores)
    assert [r["attribute"] for r in verdict.reasons] == ["insult", "toxic", "threat"]


def test_approval_names_the_attribute_that_came_closest() -> None:
    verdict = apply_policy(
        policy_for_site(DEFAULTS, {}), {"toxic": 0.2, "insult": 0.55, "threat": 0.0}
    )
    assert verdict.action == "approve"
    assert verdict.reasons[0]["code"] == "all_below_threshold"
    assert verdict.reasons[0]["attribute"] == "insult"


def test_site_thresholds_override_the_defaults() -> None:
    policy = policy_for_site(DEFAULTS, {"thresholds": {"toxic": 0.9}})
    assert policy.thresholds == {"toxic": 0.9, "insult": 0.6, "threat": 0.3}
    assert apply_policy(policy, {"toxic": 0.8, "insult": 0, "threat": 0}).action == "approve"


GERMAN = LanguageGuess("de", 0.99, reliable=True)


def test_a_comment_in_another_language_is_held_with_its_language_by_default() -> None:
    verdict = language_verdict(policy_for_site(DEFAULTS, {}), GERMAN)
    assert verdict is not None
    assert verdict.action == "hold"
    assert verdict.reasons == [
        {"code": "unsupported_language", "language": "de", "confidence": 0.99}
    ]


def test_a_site_can_approve_comments_in_other_languages() -> None:
    policy = policy_for_site(DEFAULTS, {"unsupported_language": "approve"})
    verdict = language_verdict(policy, GERMAN)
    assert verdict is not None
    assert verdict.status == "approved"
    assert verdict.reasons[0]["code"] == "unsupported_language"


def test_the_deployment_default_applies_unless_the_site_says_otherwise() -> None:
    approving = policy_for_site(DEFAULTS, {}, unsupported_language="approve")
    assert approving.unsupported_language == "approve"
    site_holds = policy_for_site(
        DEFAULTS, {"unsupported_language": "hold"}, unsupported_language="approve"
    )
    assert site_holds.unsupported_language == "hold"


def test_an_unknown_site_setting_holds_rather_than_publishes() -> None:
    policy = policy_for_site(
        DEFAULTS, {"unsupported_language": "aprove"}, unsupported_language="approve"
    )
    assert policy.unsupported_language == "hold"


@pytest.mark.parametrize(
    "guess",
    [
        LanguageGuess("en", 0.95, reliable=True),
        LanguageGuess("de", 0.55, reliable=False),
        LanguageGuess(None, 0.0, reliable=False),
    ],
)
def test_english_and_unsure_guesses_are_scored(guess: LanguageGuess) -> None:
    assert language_verdict(policy_for_site(DEFAULTS, {}), guess) is None


def test_the_deployment_default_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODERATION_UNSUPPORTED_LANGUAGE", raising=False)
    assert Settings().unsupported_language == "hold"
    monkeypatch.setenv("MODERATION_UNSUPPORTED_LANGUAGE", "approve")
    assert Settings().unsupported_language == "approve"
    monkeypatch.setenv("MODERATION_UNSUPPORTED_LANGUAGE", "publish")
    with pytest.raises(ValidationError):
        Settings()
