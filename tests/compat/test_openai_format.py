"""Our six attributes mapped onto OpenAI's categories, and OpenAI's `input` validated: no stack."""

from __future__ import annotations

import pytest

from classifier import ATTRIBUTES
from service.comments.inline import Judged
from service.compat.errors import OpenAIError
from service.compat.openai_format import (
    CATEGORIES,
    CATEGORIES_OF,
    categories_of,
    category_scores,
    moderation_response,
    moderation_result,
    texts_of,
)
from service.rules.language import UNDETERMINED, LanguageGuess
from service.rules.policy import Verdict, apply_policy, language_verdict, policy_for_site
from service.rules.reasons import Reason

POLICY = policy_for_site(dict.fromkeys(ATTRIBUTES, 0.2), {})
LOW = dict.fromkeys(ATTRIBUTES, 0.01)


def _judged(scores: dict[str, float]) -> Judged:
    return Judged(scores, apply_policy(POLICY, scores), UNDETERMINED)


def test_every_attribute_maps_to_at_least_one_of_openais_categories() -> None:
    assert set(CATEGORIES_OF) == set(ATTRIBUTES)
    assert all(mapped and set(mapped) <= set(CATEGORIES) for mapped in CATEGORIES_OF.values())
    assert len(CATEGORIES) == 13


def test_a_category_scores_the_highest_of_its_attributes_and_unmodelled_ones_zero() -> None:
    scores = category_scores(
        {**LOW, "toxic": 0.3, "insult": 0.9, "threat": 0.5, "identity_hate": 0.4}
    )

    assert scores["harassment"] == 0.9
    assert scores["harassment/threatening"] == 0.5
    assert scores["violence"] == 0.5
    assert scores["hate"] == 0.4
    assert scores["sexual"] == scores["self-harm"] == scores["hate/threatening"] == 0.0
    assert list(scores) == list(CATEGORIES)


def test_a_category_is_true_when_an_attribute_mapped_to_it_crossed() -> None:
    flags = categories_of(["threat"])

    assert {c for c, on in flags.items() if on} == {
        "harassment",
        "harassment/threatening",
        "violence",
    }
    assert not any(categories_of([]).values())


def test_a_comment_held_for_toxic_alone_sets_harassment_and_is_flagged() -> None:
    result = moderation_result(_judged({**LOW, "toxic": 0.25}))

    assert result["flagged"] is True
    assert [c for c, on in result["categories"].items() if on] == ["harassment"]
    assert result["category_scores"]["harassment"] == 0.25


def test_an_approved_comment_is_not_flagged_but_keeps_its_scores() -> None:
    result = moderation_result(_judged({**LOW, "insult": 0.19}))

    assert result["flagged"] is False
    assert not any(result["categories"].values())
    assert result["category_scores"]["harassment"] == 0.19
    assert result["category_applied_input_types"] == {c: ["text"] for c in CATEGORIES}


@pytest.mark.parametrize(("action", "flagged"), [("hold", True), ("approve", False)])
def test_an_unscored_language_scores_zero_and_is_flagged_as_the_policy_says(
    action: str, flagged: bool
) -> None:
    policy = policy_for_site(POLICY.thresholds, {"unsupported_language": action})
    verdict = language_verdict(policy, LanguageGuess("de", 0.99, True))
    assert verdict is not None

    result = moderation_result(Judged({}, verdict, LanguageGuess("de", 0.99, True)))

    assert result["flagged"] is flagged
    assert set(result["category_scores"].values()) == {0.0}
    assert not any(result["categories"].values())


def test_a_scoring_error_is_flagged_for_a_person() -> None:
    result = moderation_result(
        Judged({}, Verdict("hold", [{"code": Reason.SCORING_ERROR}]), UNDETERMINED)
    )

    assert result["flagged"] is True
    assert not any(result["categories"].values())


def test_the_response_keeps_input_order_and_echoes_the_model() -> None:
    answer = moderation_response([_judged(LOW), _judged({**LOW, "obscene": 0.8})], model="my-model")

    assert answer["id"].startswith("modr-") and len(answer["id"]) > 10
    assert answer["model"] == "my-model"
    assert [r["flagged"] for r in answer["results"]] == [False, True]


def test_input_may_be_one_string_or_a_list_of_strings() -> None:
    assert texts_of("", max_chars=10) == [""]
    assert texts_of(["a", "b"], max_chars=10) == ["a", "b"]


@pytest.mark.parametrize(
    "raw", [None, 3, True, {"text": "a"}, [], ["a", 1], [["a"]], ["a"] * 101, "a\x00", "a" * 11]
)
def test_bad_input_is_an_openai_error_naming_input(raw: object) -> None:
    with pytest.raises(OpenAIError) as caught:
        texts_of(raw, max_chars=10)

    assert caught.value.status == 400
    assert caught.value.param == "input"
