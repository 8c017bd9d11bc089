"""Which language a comment is in, cautiously: only a clear non-English text is routed away.

The detector is py3langid (a naive Bayes model over byte n-grams, 4.5 MB compressed, shipped
inside the package as numpy arrays: nothing is downloaded and nothing is unpickled). It is
loaded once per process, on first use, memory-mapped from files under `var/` where the process
says so (`use_detector_files`), and takes about 0.1 ms per comment of news length. A
Latin-script comment holding an English-only word is English by rule (at worst mixed, which is
scored as English), so most English comments never reach it.

A guess is `reliable` only when acting on it cannot hurt an English comment:
- links, @mentions, e-mail addresses, markup and digits are removed first; what remains must
  hold enough letters (`MIN_LETTERS`) and, in Latin script, enough words (`MIN_WORDS`), so
  "ok", "lol", "+1", emoji, numbers and a bare URL are undetermined;
- in Latin script the detector must be confident (`MIN_CONFIDENCE`) and the text must hold no
  English-only word ("the", "you", ...), so English with a foreign name or phrase ("Merci for
  the article", "As the French say, c'est la vie") or with typos stays English;
- text mostly in another script (Cyrillic, Greek, CJK, ...) is not English whatever the
  detector's confidence, unless each of its non-Latin letters is a Latin look-alike ("you are
  an idiot" typed in Cyrillic look-alikes): that is obfuscated English, judged folded.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import structlog

from classifier.normalize import CONFUSABLES
from service.core.memory import return_freed_memory
from service.rules.detector_files import mapped_detector

__all__ = ["ENGLISH", "LanguageGuess", "detect_language", "load_detector", "use_detector_files"]

log = structlog.get_logger(__name__)

ENGLISH = "en"
MIN_LETTERS = 12
MIN_WORDS = 3
MIN_CONFIDENCE = 0.6
MIN_LETTERS_OTHER_SCRIPT = 4
MAX_CHARS = 2000
# NFKC turns one character into as many as 18 (U+FDFA), so the folded text is cut again:
# ordinary text grows by a few characters at most ("…" -> "..."), well inside twice.
MAX_FOLDED_CHARS = 2 * MAX_CHARS
# Labels that are English for our purposes: English-based creoles and Scots are confused with
# English on short texts ("Putin said 'nyet' to Zelensky" comes out as Nigerian Pidgin).
_ENGLISH_LIKE = frozenset({"en", "pcm", "sco", "jam", "tpi", "bi"})
_NOT_A_LANGUAGE = frozenset({"zxx", "und"})

_NOISE = re.compile(
    r"(?:https?://|ftp://|www\.)\S+"  # links
    # E-mail addresses. Tried only where a word (or the text after a tag) begins, and each part
    # stops at the next "@" or ">", so a run like "x@x@x@..." is scanned once rather than once
    # per start and per "@" (2,000 characters of it took 0.6 s with `\S+@\S+\.\w+`).
    r"|(?<![^\s>])\S[^\s@>]*+@[^\s>]+\.\w+"
    r"|@\w+"  # mentions
    r"|<[^<>]*>"  # markup
    r"|&#?\w+;"  # entities
    r"|[\d_]+",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W\d_]{2,}")
# Words that are English and no word of another Latin-script language: one of them makes a
# text mixed ("As the French say, c'est la vie"), and a mixed text is scored as English.
_ENGLISH_ONLY = frozenset(
    [
        "the",
        "and",
        "you",
        "your",
        "with",
        "this",
        "that",
        "what",
        "they",
        "are",
        "were",
        "would",
        "should",
        "could",
        "about",
        "which",
        "their",
        "there",
        "these",
        "those",
        "from",
        "have",
        "been",
        "said",
        "says",
    ]
)


@dataclass(frozen=True)
class LanguageGuess:
    """`language` is an ISO 639 code (None: undetermined); act on it only when `reliable`."""

    language: str | None
    confidence: float
    reliable: bool

    @property
    def is_english(self) -> bool:
        return self.language is None or self.language == ENGLISH or not self.reliable


UNDETERMINED = LanguageGuess(None, 0.0, False)


_files: list[Path] = []  # where this process keeps the detector's files (use_detector_files)


def use_detector_files(directory: Path | None) -> None:
    """Keep the detector's model as memory-mapped files under `directory` in this process
    (service/rules/detector_files.py); until called, or with None, it is inflated into memory."""
    _files[:] = [] if directory is None else [directory]
    load_detector.cache_clear()


@lru_cache(maxsize=1)
def load_detector() -> Any:
    """The process's detector, loaded on first use; call it early to warm up.

    From files (`use_detector_files`) it opens in milliseconds and holds a few MB; inflated,
    it takes about 0.5 s and 73 MB. Files that cannot be written or read fall back to that.
    """
    if _files:
        try:
            return mapped_detector(_files[0])
        except (OSError, ValueError):
            log.warning("language_model_files_unusable", directory=str(_files[0]), exc_info=True)
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    detector = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    return_freed_memory()  # the model's inflated file, freed but otherwise still in RSS
    return detector


def _is_latin(char: str) -> bool:
    code = ord(char)
    # Basic to Extended-B and IPA, phonetic small capitals, Extended Additional and -D,
    # fullwidth.
    return (
        code < 0x2B0
        or 0x1D00 <= code < 0x1DC0
        or 0x1E00 <= code < 0x1F00
        or 0xA720 <= code < 0xA800
        or 0xFF21 <= code < 0xFF5B
    )


def detect_language(text: str) -> LanguageGuess:
    """Guess the language of one comment; short, mixed or odd texts come out unreliable."""
    # The first few thousand characters say which language a comment is in.
    cleaned = " ".join(_NOISE.sub(" ", text[:MAX_CHARS]).split())
    # Styled letters (mathematical bold, fullwidth) are plain letters to a reader; NFKC only: the
    # model's look-alike folding would turn real Cyrillic into broken Latin.
    cleaned = unicodedata.normalize("NFKC", cleaned)[:MAX_FOLDED_CHARS]
    letters = [c for c in cleaned if c.isalpha()]
    if not letters:
        return UNDETERMINED
    foreign = [c for c in letters if not _is_latin(c)]
    if foreign and all(c.lower() in CONFUSABLES for c in foreign):
        # Every non-Latin letter passes for a Latin one: English in disguise, judged unfolded
        # it would be routed away and never scored.
        cleaned = "".join(CONFUSABLES.get(c, c) for c in cleaned.lower())
        foreign = []
    other_script = len(foreign) * 2 > len(letters)
    words = _WORD.findall(cleaned)
    # English words among others ("The minister wrote: Слава Україні!") make a mixed text,
    # and a mixed text is scored as English rather than routed away unscored.
    english_words = any(w.lower() in _ENGLISH_ONLY for w in words)
    enough = len(letters) >= MIN_LETTERS and len(words) >= MIN_WORDS
    if english_words and not other_script:
        # English at worst mixed with another language, and a mixed text is scored as
        # English: whatever the detector said, the comment would be scored. It is not asked,
        # which spares most English comments its cost; the confidence is the rule's own.
        return LanguageGuess(ENGLISH, 1.0, enough)
    detector = load_detector()
    language, confidence = detector.classify(cleaned)
    language, confidence = str(language), float(confidence)
    if other_script:
        if language in _ENGLISH_LIKE or language in _NOT_A_LANGUAGE:
            # English is not written in this script: take the best guess that is not English.
            ranked = detector.rank(cleaned)
            language, confidence = next(
                (str(code), float(p))
                for code, p in ranked
                if code not in _ENGLISH_LIKE and code not in _NOT_A_LANGUAGE
            )
        # A script English is not written in is evidence enough, unless English words stand
        # beside it.
        reliable = len(letters) >= MIN_LETTERS_OTHER_SCRIPT and not english_words
        return LanguageGuess(language, round(confidence, 4), reliable)
    if language in _NOT_A_LANGUAGE:
        return LanguageGuess(None, round(confidence, 4), False)
    if language in _ENGLISH_LIKE:
        language = ENGLISH
    reliable = enough and confidence >= MIN_CONFIDENCE
    return LanguageGuess(language, round(confidence, 4), reliable)
