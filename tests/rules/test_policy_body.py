"""Policy bodies: what a level may say, refused with the field named, and how levels merge."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.rules.policy import resolve_policy
from service.rules.policy_body import PolicyBody, merge_policies

DEFAULTS = {"toxic": 0.2, "insult": 0.2}


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"thresholds": {"toxic": 2}}, "thresholds"),
        ({"thresholds": {"toxicity": 0.5}}, "thresholds"),
        ({"reject_thresholds": {"toxic": 0.5}, "thresholds": {"toxic": 0.6}}, "reject_thresholds"),
        ({"rules": {"links": {"max_links": -1}}}, "max_links"),
        ({"rules": {"links": {"allowed_domains": ["not a domain"]}}}, "allowed_domains"),
        ({"rules": {"flood": {"max_per_minute": 0}}}, "max_per_minute"),
        ({"rules": {"new_commenter": {"approved_comments": 0}}}, "approved_comments"),
        ({"rules": {"recent_rejections": {"rate": 1.5}}}, "rate"),
        ({"rules": {"spam": {}}}, "spam"),
        ({"closed_action": "delete"}, "closed_action"),
        ({"premoderate": True}, "premoderate"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(body: dict, where: str) -> None:
    with pytest.raises(ValidationError) as refused:
        PolicyBody.model_validate(body)
    assert where in str(refused.value)


def test_a_body_keeps_only_what_it_names() -> None:
    body = PolicyBody.model_validate({"rules": {"links": {"max_links": 2}}, "closed": True})
    assert body.stored() == {"rules": {"links": {"max_links": 2}}, "closed": True}
    domains = PolicyBody.model_validate(
        {"rules": {"links": {"allowed_domains": ["*.Example.COM", "example.com", "bbc.co.uk."]}}}
    )
    assert domains.stored()["rules"]["links"]["allowed_domains"] == ["example.com", "bbc.co.uk"]


def test_levels_merge_maps_by_key_rules_by_field_the_rest_replaced() -> None:
    site = {
        "thresholds": {"toxic": 0.5},
        "rules": {"links": {"max_links": 2, "min_approved": 3}},
        "closed_action": "reject",
    }
    article = {
        "thresholds": {"insult": 0.7},
        "rules": {"links": {"max_links": 0}},
        "closed": True,
    }
    merged = merge_policies(site, article)
    assert merged["thresholds"] == {"toxic": 0.5, "insult": 0.7}
    assert merged["rules"]["links"] == {"max_links": 0, "min_approved": 3}
    policy = resolve_policy(DEFAULTS, site, article)
    assert policy.thresholds == {"toxic": 0.5, "insult": 0.7}
    assert policy.links is not None and policy.links.max_links == 0
    assert (policy.closed, policy.closed_action) == (True, "reject")


def test_every_rule_is_off_by_default_and_off_again_when_a_level_says_so() -> None:
    plain = resolve_policy(DEFAULTS, {})
    assert (plain.links, plain.flood, plain.new_commenter, plain.recent_rejections) == (
        None,
        None,
        None,
        None,
    )
    assert not plain.reject_thresholds and not plain.premoderate_all and not plain.closed
    site = {"rules": {"new_commenter": {"approved_comments": 2}}}
    assert resolve_policy(DEFAULTS, site).new_commenter is not None
    section = {"rules": {"new_commenter": {"enabled": False}}}
    assert resolve_policy(DEFAULTS, site, section).new_commenter is None


def test_naming_a_rule_with_no_settings_turns_it_on_with_its_defaults() -> None:
    body = PolicyBody.model_validate({"rules": {"new_commenter": {}}}).stored()
    policy = resolve_policy(DEFAULTS, body)
    assert policy.new_commenter is not None and policy.new_commenter.approved_comments == 3


def test_a_reject_threshold_below_a_hold_threshold_of_another_level_never_rejects_less() -> None:
    # The section set its band for a site threshold the site later raised: the band follows.
    policy = resolve_policy(
        DEFAULTS, {"thresholds": {"toxic": 0.8}}, {"reject_thresholds": {"toxic": 0.6}}
    )
    assert policy.reject_thresholds["toxic"] == 0.8
