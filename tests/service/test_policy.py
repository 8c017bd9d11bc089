"""The default policy: hold at or above a threshold, and always say why."""

from __future__ import annotations

from service.policy import apply_policy, policy_for_site

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
