"""Perspective's wire format as plain functions: names, UTF-16 offsets, sentences, labels."""

from __future__ import annotations

import pytest

from service.compat.discovery import discovery_document
from service.compat.errors import GoogleError
from service.compat.perspective_format import (
    AnalyzeIn,
    SuggestIn,
    primary_language,
    requested_attributes,
    sentence_spans,
    suggested_labels,
    utf16_offsets,
)


def test_utf16_offsets_count_astral_characters_twice() -> None:
    text = "a😀b\U0001d518c"  # an emoji and a mathematical letter, both astral
    offsets = utf16_offsets(text)
    assert offsets == [0, 1, 3, 4, 6, 7]
    assert offsets[-1] == len(text.encode("utf-16-le")) // 2


def test_sentences_end_at_their_punctuation_and_a_text_without_any_is_one() -> None:
    text = "First one. Second?! And a third"
    assert [text[s:e] for s, e in sentence_spans(text)] == ["First one.", "Second?!", "And a third"]
    assert sentence_spans("no stop here") == [(0, 12)]
    assert sentence_spans("   ") == [(0, 3)]


def test_versioned_and_experimental_names_map_to_the_same_attribute() -> None:
    request = AnalyzeIn.model_validate(
        {"requestedAttributes": {"TOXICITY@6": {}, "insult_experimental": {}, "PROFANITY": {}}}
    )
    names = [(r.name, r.attribute) for r in requested_attributes(request)]
    assert names == [
        ("TOXICITY@6", "toxic"),
        ("insult_experimental", "insult"),
        ("PROFANITY", "obscene"),
    ]


def test_an_unknown_attribute_is_refused_unless_dropping_is_asked_for() -> None:
    with pytest.raises(GoogleError, match="Unknown requested attribute: SPAM"):
        requested_attributes(AnalyzeIn.model_validate({"requestedAttributes": {"SPAM": {}}}))
    dropped = AnalyzeIn.model_validate(
        {"requestedAttributes": {"SPAM": {}}, "dropUnsupportedAttributes": True}
    )
    with pytest.raises(GoogleError) as caught:
        requested_attributes(dropped)
    assert caught.value.details[0]["errorType"] == "NO_REQUESTED_ATTRIBUTES"


def test_language_tags_reduce_to_their_primary_subtag() -> None:
    assert [primary_language(t) for t in ("en", "en-US", "EN_gb", "de-AT")] == [
        "en",
        "en",
        "en",
        "de",
    ]


def test_a_suggestion_at_or_over_a_half_is_a_positive_label() -> None:
    request = SuggestIn.model_validate(
        {
            "comment": {"text": "x"},
            "attributeScores": {
                "TOXICITY": {"summaryScore": {"value": 0.5}},
                "INSULT": {"summaryScore": {"value": 0.2}},
                "SPAM": {"summaryScore": {"value": 1}},
            },
        }
    )
    assert suggested_labels(request) == {"toxic": 1, "insult": 0}


def test_the_discovery_document_roots_at_the_given_url_with_a_trailing_slash() -> None:
    document = discovery_document("https://moderation.example.org/perspective")
    assert document["rootUrl"] == "https://moderation.example.org/perspective/"
    analyze = document["resources"]["comments"]["methods"]["analyze"]
    assert analyze["request"]["$ref"] in document["schemas"]
    assert analyze["id"] == "commentanalyzer.comments.analyze"
