"""Normalisation folds text while every character still maps back to the original."""

from __future__ import annotations

import gc
import re
import tracemalloc

import numpy as np
import pytest

from classifier import ATTRIBUTES, load_default_model, normalize, normalize_text
from classifier.normalize import CACHE_SIZE, MAX_EXPANSION


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


def _span_of(text: str, normalized: str, *, offsets: np.ndarray, word: str) -> str:
    """The original text behind `word` in the normalised text (as explanations compute it)."""
    start = normalized.index(word)
    end = start + len(word)
    return text[offsets[start] : offsets[end - 1] + 1]


@pytest.mark.parametrize(
    ("text", "expected", "original"),
    [
        ("you are an \u0456diot", "idiot", "\u0456diot"),  # Cyrillic i
        ("\u0455tupid", "stupid", "\u0455tupid"),  # Cyrillic dze
        ("\u0412ITCH", "bitch", "\u0412ITCH"),  # Cyrillic VE
        ("\u03b9d\u03b9\u03bft", "idiot", "\u03b9d\u03b9\u03bft"),  # Greek iota, omicron
        ("\uff29\uff24\uff29\uff2f\uff34", "idiot", "\uff29\uff24\uff29\uff2f\uff34"),
        ("\u00ecd\u00efot", "idiot", "\u00ecd\u00efot"),  # diacritics
        ("i\u0337d\u0337iot", "idiot", "i\u0337d\u0337iot"),  # stacked combining marks
    ],
)
def test_look_alike_letters_fold_to_latin_and_map_back(
    text: str, expected: str, original: str
) -> None:
    normalized, offsets = normalize(text)
    assert normalized.endswith(expected)
    assert _span_of(text, normalized, offsets=offsets, word=expected) == original


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("you 1d10t", "you idiot"),
        ("st00pid", "stoopid"),
        ("kiss my @ss", "kiss my ass"),
        ("sh1t happens", "shit happens"),
        ("you b!tch!", "you bitch!"),
        ("$hit", "shit"),
        ("3vil", "evil"),
    ],
)
def test_leetspeak_inside_words_becomes_letters_one_for_one(text: str, expected: str) -> None:
    normalized, offsets = normalize(text)
    assert normalized == expected
    assert offsets.tolist() == list(range(len(text)))


@pytest.mark.parametrize(
    "text",
    [
        "2026",
        "10,000",
        "3.5%",
        "$100",
        "the meeting is at 10:30 on 2026-11-26",
        "the 10th, 1st and 3rd at 5pm, 100km away",
        "mp3 covid19 g7 4x4",
        "great!!! wow!",
    ],
)
def test_numbers_and_ordinary_punctuation_are_not_leetspeak(text: str) -> None:
    assert normalize_text(text) == text


def test_html_tags_are_removed_and_entities_decoded() -> None:
    text = "<p>You <b>id</b>iot</p><br/>Tom &amp; Jerry&#39;s &lt;3 &#x456;diot"
    normalized, offsets = normalize(text)
    assert normalized == " you idiot  tom & jerry's <3 idiot"
    assert _span_of(text, normalized, offsets=offsets, word="idiot") == "id</b>iot"
    assert text[offsets[normalized.index("&")]] == "&"


def test_angle_brackets_that_are_not_html_keep_their_words() -> None:
    assert normalize_text("you <idiot>, I <3 this, a < b > c") == (
        "you <idiot>, i <3 this, a < b > c"
    )


def test_urls_become_one_space_so_their_words_are_not_scored() -> None:
    text = "See http://x.com/idiot and WWW.Stupid.org/x now"
    normalized, offsets = normalize(text)
    assert normalized == "see   and   now"
    assert text[offsets[4] :].startswith("http://x.com/idiot")
    assert "idiot" not in normalize_text("https://example.com/idiot?a=1&amp;b=2")


@pytest.mark.parametrize("text", ["", " ", "\u200b", "😀😀😀", "👍🏽", "🇺🇦"])
def test_empty_and_emoji_only_texts_do_not_break(text: str) -> None:
    normalized, offsets = normalize(text)
    assert len(offsets) == len(normalized)
    assert normalized == normalize_text(text)


def test_ten_thousand_characters_normalise_with_a_full_offset_map() -> None:
    # Speed is measured in bench/model.py, not asserted here.
    text = ("You 1d10t, see <b>http://x.com</b> &amp; the 10th \u0456diot! " * 200)[:10_000]
    normalized, offsets = normalize(text)
    assert normalize_text(text) == normalized
    assert len(offsets) == len(normalized)
    assert "idiot" in normalized


CASES = [
    "Hello World",
    "f\u200buck you",
    "you are an \u0456diot",
    "you 1d10t",
    "<i>sh1t</i> &amp; b!tch http://x.com/a www.y.org 2026 10,000 3.5%",
    "\uff33\uff34\uff35\uff30\uff29\uff24 Stra\u00dfe caf\u00e9 \u00ecd\u00efot",
    "@john 10th 5pm mp3",
    "",
    "😀",
]


@pytest.mark.parametrize("text", CASES)
def test_normalising_twice_changes_nothing(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once
    assert normalize(once)[0] == once


@pytest.mark.parametrize("text", CASES)
def test_every_word_span_maps_back_to_the_original_exactly(text: str) -> None:
    normalized, offsets = normalize(text)
    assert normalized == normalize_text(text)
    assert len(offsets) == len(normalized)
    assert all(0 <= o < len(text) for o in offsets)
    assert list(offsets) == sorted(offsets), "the map never goes backwards"
    for match in re.finditer(r"\w+", normalized):
        start, end = int(offsets[match.start()]), int(offsets[match.end() - 1]) + 1
        # The original span folds to the same word (or contains it, around removed markup).
        assert match.group() in normalize_text(text[start:end])


def test_every_code_point_folds_to_a_fixed_point() -> None:
    for code in range(0x3400):
        folded = normalize_text(chr(code))
        assert normalize_text(folded) == folded, hex(code)


OBFUSCATED = [
    ("fuck you", "f\u200buck you"),
    ("you are an idiot", "you are an \u0456diot"),
    ("you idiot", "you 1d10t"),
    ("you are stupid", "you are \u0455tupid"),
    ("you idiot", "<b>you</b> id<i></i>iot"),
]


def test_obfuscation_does_not_hide_an_insult_from_the_default_model() -> None:
    model = load_default_model()
    toxic = ATTRIBUTES.index("toxic")
    texts = [t for pair in OBFUSCATED for t in pair]
    scores = model.predict_proba([*texts, "The meeting is at 10:30 on 2026-11-26"])[:, toxic]
    for (plain, hidden), (p, h) in zip(OBFUSCATED, scores[:-1].reshape(-1, 2), strict=True):
        # Tolerance: within 0.15 of the plain form, or both clearly toxic.
        assert abs(p - h) <= 0.15 or (p >= 0.5 and h >= 0.5), (plain, hidden, p, h)
        assert h >= 0.5, hidden
    assert scores[-1] < 0.2


# -- bounded work: expansion and memory ------------------------------------------------------


@pytest.fixture(scope="module")
def every_code_point() -> tuple[str, np.ndarray]:
    """Each code point once, in order, and how many characters each one folded to."""
    text = "".join(map(chr, range(0x110000)))
    normalized, offsets = normalize(text)
    assert len(offsets) == len(normalized)
    return text, np.bincount(offsets, minlength=len(text))


def test_no_code_point_folds_to_more_than_max_expansion_characters(
    every_code_point: tuple[str, np.ndarray],
) -> None:
    text, folded_lengths = every_code_point
    assert folded_lengths.max() == MAX_EXPANSION
    assert folded_lengths.sum() <= MAX_EXPANSION * len(text)
    # The per-character pass is the same alone as in a text: spot-check the longest folds.
    for code in np.flatnonzero(folded_lengths == MAX_EXPANSION)[::50]:
        assert len(normalize_text(chr(code))) == MAX_EXPANSION, hex(code)


def test_cut_folds_keep_their_first_characters_and_stay_fixed_points(
    every_code_point: tuple[str, np.ndarray],
) -> None:
    assert normalize_text("\ufdfa") == "\u0635\u0644\u0649"  # the first word of 4 of 18
    assert normalize_text("\u33d8") == "p.m"
    assert normalize_text("\u3316") == "\u30ad\u30ed\u30e1"  # "kiromeetoru", squared
    _, folded_lengths = every_code_point
    for code in np.flatnonzero(folded_lengths == MAX_EXPANSION):
        folded = normalize_text(chr(code))
        assert normalize_text(folded) == folded, hex(code)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("wait\u2026 what", "wait... what"),
        ("\u00bd cup, \u00be mile, \u215b inch", "1\u20442 cup, 3\u20444 mile, 1\u20448 inch"),
        ("o\ufb03ce \ufb01le \ufb02ow", "office file flow"),
        ("Stra\u00dfe\u2122 \u2166", "strassetm vii"),
    ],
)
def test_the_multi_character_folds_of_ordinary_text_are_not_cut(text: str, expected: str) -> None:
    normalized, offsets = normalize(text)
    assert normalized == expected
    assert len(offsets) == len(normalized)


@pytest.mark.parametrize(
    "text",
    [
        "\ufdfa" * 10_000,
        "\u33d8" * 10_000,
        "&#65018;" * 1_250,  # an entity for U+FDFA
        "&fjlig;&nvlt;" * 700,  # entities of two code points
        ("\u00bd\u2026\ufb03" * 3_334)[:10_000],
    ],
    ids=["U+FDFA", "U+33D8", "entity-FDFA", "entities-2-code-points", "3-char-folds"],
)
def test_hostile_text_normalises_to_at_most_max_expansion_times_its_length(text: str) -> None:
    normalized, offsets = normalize(text)
    assert len(normalized) <= MAX_EXPANSION * len(text)
    assert len(offsets) == len(normalized)
    assert normalize_text(text) == normalized


def test_the_code_point_tables_stay_bounded_whatever_text_is_seen() -> None:
    normalize_text("warm up: \u00e9\u2019")
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        # Eight times as many code points as a table holds; unbounded, they kept ~30 MB.
        for start in range(0, 8 * CACHE_SIZE, 4096):
            normalize_text("".join(map(chr, range(start, start + 4096))))
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 8_000_000, f"normalisation kept {grown / 1e6:.1f} MB"
    # Starting over forgets nothing that matters: folding is still right afterwards.
    assert normalize_text("\uff29\uff24\uff29\uff2f\uff34 \u0456diot 1d10t") == "idiot idiot idiot"
