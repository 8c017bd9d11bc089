"""Text normalisation (case, look-alikes, markup, leetspeak) mapped to original offsets.

Three passes, each keeping a map from every output character to its source index:

1. Per code point (a memoised `str.translate` table): zero-width and control characters are
   dropped, whitespace becomes one plain space, NFKC folds fullwidth and styled forms, case is
   folded, diacritics and stacked combining marks are stripped, and Cyrillic/Greek letters that
   look like Latin ones ("\u0456diot" with a Cyrillic i) become those Latin letters.
2. Markup: HTML tags are removed (inline ones with no trace, so "<b>id</b>iot" stays one word;
   block ones become a space), entities are decoded ("&amp;" -> "&", "&#39;" -> "'") and URLs
   (`http://`, `https://`, `ftp://`, `www.`) are replaced by one space: the words inside a link
   are not the commenter's words ("http://x.com/idiot" is not an insult), and links themselves
   are judged by the service's rules, not by the model.
3. Leetspeak, one character for one: inside a word that mixes letters with digits or `@$!`,
   those characters become the letters they stand for ("1d10t" -> "idiot", "@ss" -> "ass",
   "b!tch" -> "bitch"). Plain numbers ("2026", "10,000", "3.5%"), numbers with a unit or an
   ordinal ("10th", "5pm", "100km") and trailing digits ("mp3", "covid19") are left alone.

Normalising normalised text changes nothing, except for entity-escaped markup ("&lt;b&gt;"
decodes to "<b>", which a second pass would remove as a tag).

Work is bounded whatever the text: one character folds to at most `MAX_EXPANSION` characters,
so the normalised text is at most `MAX_EXPANSION` times as long as the original, and the
per-code-point tables hold at most `CACHE_SIZE` entries each.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Iterable

import numpy as np

__all__ = ["CACHE_SIZE", "CONFUSABLES", "MAX_EXPANSION", "normalize", "normalize_text"]

# NFKC turns one character into as many as 18 (U+FDFA is a whole Arabic phrase), which let a
# comment within the length limit cost 18 times the work downstream. The longest folds that
# ordinary text needs are three characters ("…" -> "...", "ﬃ" -> "ffi", the vulgar fractions;
# no character of the 121,000 comments in the training corpora folds to more). The 72 longer
# ones (squared katakana words, Arabic ligatures, "㏘" -> "p.m.") carry nothing an English
# model reads, so they keep only their first three characters.
MAX_EXPANSION = 3
# Distinct code points memoised per table. Ordinary traffic uses a few thousand (2,495 in all
# the training corpora); a text naming every code point would otherwise grow each table to
# over a million entries (~235 MB).
CACHE_SIZE = 1 << 14

# Zero-width characters are used to split insults past word filters ("id\u200biot").
_ZERO_WIDTH = frozenset({0x200B, 0x200C, 0x200D, 0xFEFF, 0x2060, 0x00AD, 0x180E})
_WHITESPACE_CONTROLS = frozenset({0x09, 0x0A, 0x0B, 0x0C, 0x0D})
# Combining marks stacked on letters ("ì", zalgo text) hide words from an English model.
_COMBINING_BLOCKS: tuple[tuple[int, int], ...] = (
    (0x0300, 0x0370),
    (0x1AB0, 0x1B00),
    (0x1DC0, 0x1E00),
    (0x20D0, 0x2100),
    (0xFE20, 0xFE30),
)

# Lower-case (after casefolding) Cyrillic and Greek letters that pass for Latin ones, as pairs
# of (look-alikes, the Latin letters they pass for); upper-case look-alikes (Cyrillic EN, VE,
# KA, EM, TE) casefold to these lower-case letters first. Escaped, so the source stays legible.
_LOOK_ALIKES = (
    # Cyrillic
    ("\u0430\u0432\u0435\u0451\u04bb\u043d\u0456\u0457\u0458\u043a\u04cf\u043c", "abeehhiijklm"),
    ("\u043e\u0440\u051b\u0441\u0455\u0442\u0443\u045e\u0445\u0501\u051d\u0261", "opqcstyyxdwg"),
    ("\u044c\u043f", "bn"),
    # Greek
    ("\u03b1\u03b2\u03b3\u03b5\u03b7\u03b9\u03ba\u03bc\u03bd\u03bf\u03c1\u03c4", "abyenikuvopt"),
    ("\u03c5\u03c7\u03c9\u03f2\u03f3", "uxwcj"),
    # Latin letters outside ASCII that are read as ASCII ones
    ("\u0131\u0269\u0251\u0280\u028f\u1d05\u1d0b\u1d0d\u1d1b", "iiarydkmt"),
)
CONFUSABLES: dict[str, str] = {
    look: latin for looks, latins in _LOOK_ALIKES for look, latin in zip(looks, latins, strict=True)
}


def _strip_marks(char: str) -> str:
    """Latin letters lose their diacritics ("é" -> "e"); other scripts keep theirs."""
    if char.isascii() or not char.isalpha():
        return char
    decomposed = unicodedata.normalize("NFD", char)
    base = decomposed[0]
    if base.isascii():
        return base + "".join(c for c in decomposed[1:] if not _is_combining(ord(c)))
    return char


def _is_combining(code: int) -> bool:
    return any(low <= code < high for low, high in _COMBINING_BLOCKS)


def _fold_char(code: int) -> str:
    """Return the normalised form of one code point ("" drops it)."""
    if code in _ZERO_WIDTH or _is_combining(code):
        return ""
    if code in _WHITESPACE_CONTROLS:
        # Keep layout characters as one space each so word boundaries survive 1:1.
        return " "
    char = chr(code)
    if char.isspace():
        # One kind of space keeps the word splitting of the char n-gram features simple.
        return " "
    category = unicodedata.category(char)
    if category in ("Cc", "Cf", "Cs"):
        # Lone surrogates (e.g. from JSON "\ud800") cannot be encoded; they carry no meaning.
        return ""
    # Per-character NFKC never merges neighbours, so each output char has exactly one source.
    folded = unicodedata.normalize("NFKC", char).casefold()
    out = []
    for c in folded:
        if c.isspace():
            out.append(" ")
        elif _is_combining(ord(c)):
            continue
        else:
            c = _strip_marks(c)
            out.append(CONFUSABLES.get(c, c))
    return "".join(out)[:MAX_EXPANSION]


class _MemoTable(dict[int, str]):
    """A `str.translate` table that fills itself lazily and starts over when it is full.

    `str.translate` needs a mapping, and a plain dict keeps its lookups in C: ordinary text
    hits the table for nearly every character, so a Python-level LRU mapping (or a call into
    `functools.lru_cache` per character) would slow every comment to bound a rare one.
    Starting over costs one recomputation per code point, as a cold table does.
    """

    def __init__(self, compute: Callable[[int], str], *, keep: Iterable[int]) -> None:
        super().__init__()
        self._compute = compute
        self._kept = {code: compute(code) for code in keep}
        self.update(self._kept)

    def __missing__(self, code: int) -> str:
        value = self._compute(code)
        if len(self) >= CACHE_SIZE:
            # Concurrent readers may miss an entry meanwhile; they recompute the same value.
            self.clear()
            self.update(self._kept)
        self[code] = value
        return value


# A pure function of the code point, so memoising it process-wide is safe.
_TABLE = _MemoTable(_fold_char, keep=range(128))

# -- markup (runs on folded text: lower case, no zero-width characters) ----------------------
# `[^<>]*` stops at the next "<", so a text full of unclosed "<a" stays linear.
_MARKUP = re.compile(
    r"(?P<tag></?(?P<name>[a-z][a-z0-9]*)(?:[\s/][^<>]*)?>|<![^<>]*>)"
    r"|(?P<entity>&(?:#[0-9]{1,7}|#x[0-9a-f]{1,6}|[a-z][a-z0-9]{1,31});)"
    r"|(?P<url>(?:https?://|ftp://|www\.)[^\s<>\"]+)"
)
# Tags that style a run of text inside a word; the others separate words. Only real element
# names count, so "you <idiot>" cannot hide a word by dressing it up as a tag.
_INLINE_TAGS = frozenset(
    [
        "a",
        "abbr",
        "b",
        "bdi",
        "bdo",
        "big",
        "cite",
        "code",
        "del",
        "dfn",
        "em",
        "font",
        "i",
        "ins",
        "kbd",
        "mark",
        "q",
        "s",
        "samp",
        "small",
        "span",
        "strike",
        "strong",
        "sub",
        "sup",
        "time",
        "tt",
        "u",
        "var",
        "wbr",
    ]
)
_BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "audio",
        "blockquote",
        "body",
        "br",
        "button",
        "caption",
        "center",
        "col",
        "colgroup",
        "dd",
        "details",
        "div",
        "dl",
        "dt",
        "embed",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "head",
        "header",
        "hr",
        "html",
        "iframe",
        "img",
        "input",
        "label",
        "legend",
        "li",
        "link",
        "main",
        "meta",
        "nav",
        "noscript",
        "object",
        "ol",
        "option",
        "p",
        "picture",
        "pre",
        "script",
        "section",
        "select",
        "source",
        "style",
        "summary",
        "table",
        "tbody",
        "td",
        "textarea",
        "tfoot",
        "th",
        "thead",
        "title",
        "tr",
        "track",
        "ul",
        "video",
    ]
)


def _markup_replacement(match: re.Match[str]) -> str:
    if match.group("tag") is not None:
        name = match.group("name")
        if name is not None and name not in _INLINE_TAGS and name not in _BLOCK_TAGS:
            return match.group()  # not markup: "<idiot>" keeps its word
        return "" if name in _INLINE_TAGS else " "
    if match.group("url") is not None:
        return " "
    decoded = html.unescape(match.group("entity"))
    return decoded.translate(_TABLE)


def _has_markup(text: str) -> bool:
    return "<" in text or "&" in text or "://" in text or "www." in text


# -- leetspeak (runs on folded text; replaces one character by one) --------------------------
_LEET = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g"}
_LEET_INSIDE = {**_LEET, "@": "a", "$": "s", "!": "i"}  # between letters
_LEET_LEADING = {**_LEET, "@": "a", "$": "s"}  # before the first letter ("!" is punctuation)


def _shape(code: int) -> str:
    """A character's shape: "a" letter, "0" digit, "@" or "$", "!" itself, else " "."""
    char = chr(code)
    shape = "a" if char.isalpha() else "0" if char in "0123456789@$" else char
    return shape if shape in "a0!" else " "


_SHAPES = _MemoTable(_shape, keep=range(128))
# A word in which a letter touches a leet character; the lazy prefix is tried only at word
# starts (the lookbehind), so the scan stays linear in the text's length.
_LEET_WORD = re.compile(r"(?<![\w@$!])[\w@$!]*?(?:[^\W\d_][0-9@$!]|[0-9@$][^\W\d_])[\w@$!]*")
# A number with a unit or an ordinal is a number, not an obfuscated word.
_NUMBER_WITH_UNIT = re.compile(
    r"[$@]?[0-9]+(?:st|nd|rd|th|s|am|pm|k|m|mn|b|bn|t|tn|km|kg|g|mg|mm|cm|ml|l|mb|gb|tb|kb"
    r"|mph|kph|kmh|hz|khz|mhz|ghz|v|w|kw|kwh|mw|gw|h|hr|hrs|min|mins|sec|secs|ms|yo|yr|yrs"
    r"|x|d|p|fps|px|pt|ft|in|lb|lbs|oz|c|f|ish|er|ers|s)"
)


def _unleet_token(token: str) -> str:
    letters = [i for i, c in enumerate(token) if c.isalpha()]
    if not letters:
        return token
    first, last = letters[0], letters[-1]
    inside = any(c in _LEET_INSIDE for c in token[first:last])
    leading = first > 0 and last - first >= 1 and all(c in _LEET_LEADING for c in token[:first])
    if leading and _NUMBER_WITH_UNIT.fullmatch(token):
        leading = False
    if not inside and not leading:
        return token
    head = "".join(_LEET_LEADING.get(c, c) for c in token[:first]) if leading else token[:first]
    middle = "".join(_LEET_INSIDE.get(c, c) for c in token[first:last])
    return head + middle + token[last:]


def _unleet(text: str) -> str:
    # A cheap necessary condition (a letter touching a leet character) spares most comments
    # the word-by-word scan; it costs one translate and three substring searches.
    shapes = text.translate(_SHAPES)
    if "a0" not in shapes and "0a" not in shapes and "a!a" not in shapes:
        return text
    return _LEET_WORD.sub(lambda m: _unleet_token(m.group()), text)


def normalize_text(text: str) -> str:
    """Return the normalised text (same output as `normalize`, without the offset map)."""
    folded = text.translate(_TABLE)
    if _has_markup(folded):
        folded = _MARKUP.sub(_markup_replacement, folded)
    return _unleet(folded)


def normalize(text: str) -> tuple[str, np.ndarray]:
    """Normalise `text` and map each output character back to its source index.

    Returns `(normalized, offsets)` where `offsets[i]` is the index in `text` of the character
    that produced `normalized[i]`. A span `[a, b)` of the normalised text therefore covers
    `text[offsets[a]:offsets[b - 1] + 1]`. A decoded entity or a removed URL maps to the
    index of its first character.
    """
    # `map` keeps the per-character work in C; each source index repeats once per character
    # it folded to (zero times for a dropped one).
    pieces = list(map(_TABLE.__getitem__, map(ord, text)))
    lengths = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))
    folded_text = "".join(pieces)
    offsets = np.repeat(np.arange(len(text), dtype=np.int64), lengths)
    if _has_markup(folded_text):
        folded_text, offsets = _replace_markup(folded_text, offsets)
    # Leetspeak replaces characters one for one, so the offsets stay as they are.
    return _unleet(folded_text), offsets


def _replace_markup(text: str, offsets: np.ndarray) -> tuple[str, np.ndarray]:
    pieces: list[str] = []
    spans: list[tuple[int, int, int]] = []  # (start, end, length of the replacement)
    last = 0
    for match in _MARKUP.finditer(text):
        start, end = match.span()
        replacement = _markup_replacement(match)
        pieces.append(text[last:start])
        pieces.append(replacement)
        spans.append((start, end, len(replacement)))
        last = end
    if not spans:
        return text, offsets
    pieces.append(text[last:])
    # A text can hold thousands of tags ("<div>" x 2000): the offsets are rebuilt with one
    # repeat rather than an array per tag. Each source position repeats once, except that a
    # match's first one repeats once per replacement character and the rest of it not at all.
    starts, ends, lengths = np.array(spans, dtype=np.int64).T
    inside = np.zeros(len(text) + 1, dtype=np.int64)
    np.add.at(inside, starts, 1)
    np.add.at(inside, ends, -1)
    repeats = (np.cumsum(inside[:-1]) == 0).astype(np.int64)
    repeats[starts] = lengths
    return "".join(pieces), np.repeat(offsets, repeats)
