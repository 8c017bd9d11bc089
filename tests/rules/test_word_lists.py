"""Word lists: whole words after the normaliser, wildcards, phrases, spans into the original
text, and entries refused for what they would do."""

from __future__ import annotations

import pytest

from service.core.errors import InvalidInput
from service.rules.word_lists import MAX_ENTRIES, WordList, clean_entries

LIST = WordList(["idiot", "shut up", "moron*", "peace deal"])


@pytest.mark.parametrize(
    ("text", "entry", "span"),
    [
        ("You IDIOT!", "idiot", "IDIOT"),
        ("1d10t", "idiot", "1d10t"),  # leetspeak
        ("id\u200biot", "idiot", "id\u200biot"),  # a zero-width space inside
        ("\u0456diot", "idiot", "\u0456diot"),  # a Cyrillic i
        ("\uff29\uff24\uff29\uff2f\uff34", "idiot", "\uff29\uff24\uff29\uff2f\uff34"),  # fullwidth
        ("Shut, up now", "shut up", "Shut, up"),
        ("morons everywhere", "moron*", "morons"),
        ("the PEACE   deal is done", "peace deal", "PEACE   deal"),
        ("<b>id</b>iot", "idiot", "id</b>iot"),
    ],
)
def test_an_entry_is_found_however_it_is_written_with_its_span_in_the_original(
    text: str, entry: str, span: str
) -> None:
    (match,) = LIST.find(text)
    assert (match.entry, text[match.start : match.end], match.text) == (entry, span, span)


@pytest.mark.parametrize("text", ["what an idiotic plan", "no match here", "shutup", "peace"])
def test_only_whole_words_match_an_entry_without_a_wildcard(text: str) -> None:
    assert LIST.find(text) == []


def test_every_occurrence_is_found() -> None:
    found = LIST.find("idiot, idiot and a moronic idiot")
    assert [(m.entry, m.start) for m in found] == [
        ("idiot", 0),
        ("idiot", 7),
        ("moron*", 19),
        ("idiot", 27),
    ]


@pytest.mark.parametrize(
    ("entries", "field", "words"),
    [
        ([""], "entries[0]", "empty"),
        (["ok", "   "], "entries[1]", "empty"),
        (["*"], "entries[0]", "no word"),
        (["!!!"], "entries[0]", "no word"),
        (["a*"], "entries[0]", "at least 3 letters"),
        (["id*ot"], "entries[0]", "only end"),
        (["x" * 101], "entries[0]", "at most 100"),
        (["w"] * (MAX_ENTRIES + 1), "entries", "at most"),
    ],
)
def test_an_entry_that_cannot_work_is_refused_naming_it(
    entries: list[str], field: str, words: str
) -> None:
    with pytest.raises(InvalidInput, match=words) as refused:
        clean_entries(entries)
    assert refused.value.field == field


def test_entries_are_trimmed_and_kept_once() -> None:
    assert clean_entries(["  idiot ", "IDIOT", "shut   up", "moron*"]) == [
        "idiot",
        "shut up",
        "moron*",
    ]
