"""Normalisation folds text while every character still maps back to the original."""

from __future__ import annotations

from classifier import normalize, normalize_text


def test_zero_width_characters_are_dropped_and_offsets_skip_them() -> None:
    text = "You id\u200biot\u2060!"
    normalized, offsets = normalize(text)
    assert normalized == "you idiot!"
    start = normalized.index("idiot")
    end = start + len("idiot")
    assert text[offsets[start] : offsets[end - 1] + 1] == "id\u200biot"


def test_casefolding_and_compatibility_forms_keep_one_offset_per_output_char() -> None:
    text = "\uff33\uff34\uff35\uff30\uff29\uff24 Stra\u00dfe \ufb01ne"
    normalized, offsets = normalize(text)
    assert normalized == "stupid strasse fine"
    assert len(offsets) == len(normalized)
    assert [text[i] for i in offsets[normalized.index("ss") :][:2]] == ["\u00df", "\u00df"]
    assert text[offsets[normalized.index("fi")]] == "\ufb01"


def test_control_characters_vanish_and_whitespace_becomes_plain_spaces() -> None:
    normalized, offsets = normalize("a\x07b\tc\u00a0d\ufeff")
    assert normalized == "ab c d"
    assert offsets.tolist() == [0, 2, 3, 4, 5, 6]


def test_lone_surrogates_are_dropped() -> None:
    normalized, offsets = normalize("a\ud800b")
    assert normalized == "ab"
    assert offsets.tolist() == [0, 2]


def test_fast_path_matches_the_offset_version() -> None:
    for text in [
        "Hello World",
        "ID\u200bIOT \uff49\uff44\uff49\uff4f\uff54",
        "",
        "\u200b",
        "Ça va? ÉCOLE",
    ]:
        assert normalize_text(text) == normalize(text)[0]
