"""Language routing: clear non-English is detected, short, mixed and misspelt English is not."""

from __future__ import annotations

import pytest

from service.rules.language import LanguageGuess, detect_language, load_detector
from tests.factories import CIVIL, TOXIC

SHORT = [
    "",
    "ok",
    "lol",
    "Thanks!",
    "+1",
    "👍👍",
    "😂😂😂",
    "2026",
    "10,000",
    "http://x.com/idiot",
    "https://www.example.org/news/2026/11/article",
    "Gesundheit",
    "Bravo!",
    "Danke schön",
    "smh",
    "k",
]
MIXED = [
    "Putin said 'nyet' to Zelensky",
    "Merci for the article, great reporting",
    "Danke, great article!",
    "Muito obrigado for the great coverage",
    "As the French say, c'est la vie.",
    "He shouted 'Slava Ukraini' at the end of the speech.",
    "Sergei Lavrov, Dmitry Peskov and Volodymyr Zelensky",
    "Great reporting, Ms. M\u00fcller",
    "Putin: '\u041c\u044b \u043d\u0435 \u043e\u0442\u0441\u0442\u0443\u043f\u0438\u043c'"
    " \u2014 what a joke",
    "Great piece! \u0421\u043f\u0430\u0441\u0438\u0431\u043e",
    "The minister wrote: \u0421\u043b\u0430\u0432\u0430 \u0423\u043a\u0440\u0430\u0457\u043d\u0456!"
    " \u0413\u0435\u0440\u043e\u044f\u043c \u0441\u043b\u0430\u0432\u0430!",
    # Styled letters are English, not Amharic: NFKC makes them plain.
    "\U0001d432\U0001d428\U0001d42e \U0001d41a\U0001d42b\U0001d41e \U0001d41a "
    "\U0001d42c\U0001d42d\U0001d42e\U0001d429\U0001d422\U0001d41d "
    "\U0001d422\U0001d41d\U0001d422\U0001d428\U0001d42d",
    "\u028f\u1d0f\u1d1c \u1d00\u0280\u1d07 \u1d00 \ua731\u1d1b\u1d1c\u1d18\u026a\u1d05 "
    "\u026a\u1d05\u026a\u1d0f\u1d1b",  # small capitals
    "@JohnSmith you are wrong about this",
    "<b>Great</b> article &amp; photos",
]
TYPOS = [
    "Teh goverment shoud of done somethign about it",
    "i dont thnik this is rite at all",
    "ur so dumb lmao",
    "gr8 article m8",
    "you 1d10t",
    "f\u200buck you",
    "you are an \u0456diot",
    # "you are an idiot" typed wholly in Cyrillic look-alikes is English in disguise.
    "\u0443\u043eu \u0430r\u0435 \u0430n \u0456d\u0456\u043et",
]
FOREIGN = {
    "Ich bin v\u00f6llig anderer Meinung als der Minister.": "de",
    "\u042f \u043d\u0435 \u0441\u043e\u0433\u043b\u0430\u0441\u0435\u043d "
    "\u0441 \u043c\u0438\u043d\u0438\u0441\u0442\u0440\u043e\u043c.": "ru",
    "Je ne suis pas d'accord avec le ministre.": "fr",
    "\u041d\u0435 \u0437\u0433\u043e\u0434\u0435\u043d \u0437 "
    "\u043c\u0456\u043d\u0456\u0441\u0442\u0440\u043e\u043c.": "uk",
    "No estoy de acuerdo con el ministro.": "es",
    "Non sono d'accordo con il ministro.": "it",
    "Nie zgadzam si\u0119 z ministrem.": "pl",
    "Der Artikel ist gut.": "de",
    "Du bist ein Idiot.": "de",
}


@pytest.mark.parametrize("text", SHORT)
def test_very_short_texts_are_undetermined_and_scored_as_english(text: str) -> None:
    guess = detect_language(text)
    assert not guess.reliable
    assert guess.is_english


@pytest.mark.parametrize("text", MIXED)
def test_english_with_a_foreign_name_or_phrase_stays_english(text: str) -> None:
    assert detect_language(text).is_english


@pytest.mark.parametrize("text", TYPOS)
def test_english_with_typos_or_obfuscation_stays_english(text: str) -> None:
    assert detect_language(text).is_english


@pytest.mark.parametrize("text", TOXIC + CIVIL)
def test_the_integration_comments_are_english(text: str) -> None:
    assert detect_language(text).is_english


@pytest.mark.parametrize(("text", "language"), FOREIGN.items())
def test_clear_non_english_is_detected_reliably(text: str, language: str) -> None:
    guess = detect_language(text)
    assert guess == LanguageGuess(language, guess.confidence, reliable=True)
    assert 0.0 < guess.confidence <= 1.0
    assert not guess.is_english


def test_other_scripts_are_not_english_even_when_the_detector_is_unsure() -> None:
    guess = detect_language("\u6211\u4e0d\u540c\u610f\u90e8\u957f\u7684\u610f\u89c1")
    assert guess.reliable
    assert guess.language not in (None, "en")


def test_the_detector_loads_once_and_handles_every_kind_of_text() -> None:
    # Speed is a benchmark figure (about 0.17 ms a news comment), not a timed test.
    assert load_detector() is load_detector()
    for text in [*SHORT, *MIXED, *TYPOS, *FOREIGN, "word " * 2000]:
        guess = detect_language(text)
        assert 0.0 <= guess.confidence <= 1.0


def test_an_english_only_word_settles_latin_text_without_the_detector(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []
    real = load_detector()

    class Recording:
        def classify(self, text: str) -> tuple[str, float]:
            asked.append(text)
            return real.classify(text)  # type: ignore[no-any-return]

    monkeypatch.setattr("service.rules.language.load_detector", Recording)
    assert detect_language("Merci for the article, great reporting").is_english
    assert detect_language("The minister spoke for an hour") == LanguageGuess("en", 1.0, True)
    assert asked == []
    assert not detect_language("Je ne suis pas d'accord avec le ministre.").is_english
    assert len(asked) == 1, "text without an English-only word is still asked"
