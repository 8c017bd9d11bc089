"""The API's shapes agree with the domain's vocabularies."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.api.schemas import BulkReviewIn, ReviewIn
from service.app import create_app
from service.core.tables import ReviewAction


def test_the_openapi_reason_enum_lists_every_reason_code_of_the_domain() -> None:
    schemas = create_app().openapi()["components"]["schemas"]
    for name in ("ReviewIn", "BulkReviewIn"):
        reason = schemas[name]["properties"]["reason"]
        enums = [option["enum"] for option in reason["anyOf"] if "enum" in option]
        assert enums == [list(ReviewAction.REASONS)], name


def test_the_openapi_action_enum_lists_every_review_action_of_the_domain() -> None:
    schemas = create_app().openapi()["components"]["schemas"]
    for name in ("ReviewIn", "BulkReviewIn"):
        action = schemas[name]["properties"]["action"]
        assert action["enum"] == list(ReviewAction.ALL) == ["approve", "reject"], name


def test_a_review_reason_outside_the_domain_codes_is_refused_on_the_reason_field() -> None:
    assert ReviewIn(action="reject", reason="SPAM").reason == "SPAM"
    with pytest.raises(ValidationError) as single:
        ReviewIn.model_validate({"action": "reject", "reason": "RUDE"})
    with pytest.raises(ValidationError) as bulk:
        BulkReviewIn.model_validate({"ids": ["a"], "action": "reject", "reason": "RUDE"})
    assert [e["loc"] for e in single.value.errors()] == [("reason",)]
    assert [e["loc"] for e in bulk.value.errors()] == [("reason",)]
