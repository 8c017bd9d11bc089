"""The order of the rules (docs/rules.md), one step against the next: banned author, banned
word, closed article, pre-moderation, reject band, hold rules, thresholds, language, approve."""

from __future__ import annotations

from typing import Any

from service.rules.floods import Activity
from service.rules.history import AuthorHistory
from service.rules.language import LanguageGuess
from service.rules.pipeline import Facts, before_scoring, final_verdict
from service.rules.policy import Policy, Verdict, resolve_policy
from service.rules.word_lists import SiteLists, WordList

DEFAULTS = {"toxic": 0.5, "insult": 0.5}
LISTS = SiteLists(1, WordList(["scum*"]), WordList(["ceasefire"]))
LOW = {"toxic": 0.1, "insult": 0.1}
HIGH = {"toxic": 0.97, "insult": 0.6}
FRENCH = LanguageGuess("fr", 0.99, reliable=True)
EVERYTHING: dict[str, Any] = {
    "reject_thresholds": {"toxic": 0.95},
    "premoderate_all": False,
    "rules": {
        "links": {"max_links": 0},
        "flood": {"max_repeats": 2, "max_per_minute": 5},
        "new_commenter": {"approved_comments": 2},
        "recent_rejections": {"rate": 0.5, "min_decided": 2},
    },
}
VETERAN = AuthorHistory(approved=10, recent_decided=4, recent_rejected=0)


def _judge(
    text: str,
    scores: dict[str, float] | None,
    *levels: dict[str, Any],
    facts: Facts | None = None,
    language: LanguageGuess | None = None,
) -> Verdict:
    policy: Policy = resolve_policy(DEFAULTS, *levels)
    facts = facts or Facts(history=VETERAN, activity=Activity(1, 1))
    early = before_scoring(policy, LISTS, text, facts.trust)
    if early is not None:
        return early
    return final_verdict(policy, LISTS, text, facts, scores=scores, language=language)


def _codes(verdict: Verdict) -> list[str]:
    return [r["code"] for r in verdict.reasons]


def test_a_banned_author_comes_before_a_banned_word() -> None:
    verdict = _judge("scum", None, facts=Facts(trust="banned"))
    assert (verdict.action, _codes(verdict)) == ("reject", ["author_banned"])


def test_a_banned_word_comes_before_a_closed_article() -> None:
    verdict = _judge("scumbags", None, {"closed": True, "closed_action": "reject"})
    assert (verdict.action, _codes(verdict)) == ("reject", ["banned_word"])
    closed = _judge("a fine comment", None, {"closed": True, "closed_action": "reject"})
    assert (closed.action, _codes(closed)) == ("reject", ["article_closed"])
    assert closed.reasons[0]["action"] == "reject"


def test_premoderation_comes_before_the_reject_band() -> None:
    verdict = _judge("you are vile", HIGH, EVERYTHING, {"premoderate_all": True})
    assert verdict.action == "hold"
    assert _codes(verdict)[:2] == ["premoderate_all", "attribute_over_reject_threshold"]


def test_the_reject_band_comes_before_the_hold_rules() -> None:
    verdict = _judge("vile, see example.com", HIGH, EVERYTHING)
    assert (verdict.action, _codes(verdict)) == ("reject", ["attribute_over_reject_threshold"])
    assert verdict.reasons[0] == {
        "code": "attribute_over_reject_threshold",
        "attribute": "toxic",
        "score": 0.97,
        "threshold": 0.95,
    }


def test_hold_rules_hold_what_the_thresholds_would_approve() -> None:
    verdict = _judge("see example.com about the ceasefire", LOW, EVERYTHING)
    assert (verdict.action, _codes(verdict)) == ("hold", ["too_many_links", "suspect_word"])
    link = verdict.reasons[0]
    assert link["rule"] == "links" and link["settings"]["max_links"] == 0
    assert link["links"] == [{"url": "example.com", "start": 4, "end": 15}]


def test_thresholds_then_language_then_approval() -> None:
    held = _judge("rude words", {"toxic": 0.6, "insult": 0.1}, EVERYTHING)
    assert (held.action, _codes(held)) == ("hold", ["attribute_over_threshold"])
    other = _judge("bonjour à tous", None, EVERYTHING, language=FRENCH)
    assert (other.action, _codes(other)) == ("hold", ["unsupported_language"])
    approving = _judge(
        "bonjour", None, EVERYTHING, {"unsupported_language": "approve"}, language=FRENCH
    )
    assert approving.action == "approve"
    fine = _judge("thanks for the report", LOW, EVERYTHING)
    assert (fine.action, _codes(fine)) == ("approve", ["all_below_threshold"])


def test_a_hold_rule_holds_another_language_the_site_would_approve() -> None:
    body = {**EVERYTHING, "unsupported_language": "approve"}
    verdict = _judge("voir exemple.fr", None, body, language=FRENCH)
    assert (verdict.action, _codes(verdict)) == ("hold", ["too_many_links", "unsupported_language"])


def test_new_commenters_and_recent_rejections_are_premoderated() -> None:
    newcomer = Facts(history=AuthorHistory(1, 1, 0), activity=Activity(1, 1))
    verdict = _judge("thanks", LOW, EVERYTHING, facts=newcomer)
    assert (verdict.action, _codes(verdict)) == ("hold", ["new_commenter"])
    assert verdict.reasons[0]["approved"] == 1
    assert verdict.reasons[0]["settings"]["approved_comments"] == 2
    rejected = Facts(history=AuthorHistory(5, 4, 2), activity=Activity(1, 1))
    verdict = _judge("thanks", LOW, EVERYTHING, facts=rejected)
    assert _codes(verdict) == ["recent_rejections"]
    assert verdict.reasons[0]["rate"] == 0.5
    too_few = Facts(history=AuthorHistory(5, 1, 1), activity=Activity(1, 1))
    assert _judge("thanks", LOW, EVERYTHING, facts=too_few).action == "approve"
    trusted = Facts(trust="trusted", history=AuthorHistory(0, 4, 4), activity=Activity(1, 1))
    assert _judge("thanks", LOW, EVERYTHING, facts=trusted).action == "approve"


def test_repeats_and_floods_hold_with_their_counts() -> None:
    busy = Facts(history=VETERAN, activity=Activity(repeats=3, last_minute=6))
    verdict = _judge("same again", LOW, EVERYTHING, facts=busy)
    assert _codes(verdict) == ["repeated_text", "flood"]
    assert [r["count"] for r in verdict.reasons] == [3, 6]
    calm = Facts(history=VETERAN, activity=Activity(repeats=2, last_minute=5))
    assert _judge("same again", LOW, EVERYTHING, facts=calm).action == "approve"


def test_links_outside_the_allow_list_or_from_a_new_commenter_hold() -> None:
    body = {"rules": {"links": {"allowed_domains": ["example.com"], "min_approved": 3}}}
    inside = _judge("see news.example.com", LOW, body)
    assert inside.action == "approve"
    outside = _judge("see example.com and evil.net", LOW, body)
    assert _codes(outside) == ["link_not_allowed"]
    assert [x["url"] for x in outside.reasons[0]["links"]] == ["evil.net"]
    newcomer = Facts(history=AuthorHistory(2, 0, 0))
    assert _codes(_judge("see example.com", LOW, body, facts=newcomer)) == [
        "link_from_new_commenter"
    ]


def test_a_scoring_failure_holds_with_what_the_rules_found() -> None:
    policy = resolve_policy(DEFAULTS, {"premoderate_all": True})
    verdict = final_verdict(policy, LISTS, "x", Facts(), scores=None, failed="model away")
    assert (verdict.action, _codes(verdict)) == ("hold", ["premoderate_all", "scoring_error"])


def test_the_tags_of_a_comment_every_rule_fired_on_fit_their_column() -> None:
    from service.rules.reasons import TAGS_MAX, Reason, reason_tags

    reasons = [
        {"code": code, "attribute": f"attribute-{i}"} for i, code in enumerate(Reason.FILTERABLE)
    ]
    reasons += [{"code": "attribute_over_threshold", "attribute": f"a{i}" * 20} for i in range(9)]
    tags = reason_tags(reasons)
    assert len(tags) <= TAGS_MAX
    assert tags.startswith(" code:attribute_over_threshold attribute:attribute-0 code:unsupported")
