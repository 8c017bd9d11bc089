"""Text normalisation (case, compatibility forms, invisible chars) mapped to original offsets."""

from __future__ import annotations

import unicodedata

import numpy as np

__all__ = ["normalize", "normalize_text"]

# Zero-width characters are used to split insults past word filters ("id\u200biot").
_ZERO_WIDTH = frozenset({0x200B, 0x200C, 0x200D, 0xFEFF, 0x2060})
_WHITESPACE_CONTROLS = frozenset({0x09, 0x0A, 0x0B, 0x0C, 0x0D})


def _fold_char(code: int) -> str:
    """Return the normalised form of one code point ("" drops it)."""
    if code in _ZERO_WIDTH:
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
    return "".join(" " if c.isspace() else c for c in folded)


class _FoldTable(dict[int, str]):
    """A `str.translate` table that fills itself lazily, one code point at a time."""

    def __missing__(self, code: int) -> str:
        folded = _fold_char(code)
        self[code] = folded
        return folded


# A pure function of the code point, so memoising it process-wide is safe; it is bounded by
# the number of distinct code points ever seen.
_TABLE = _FoldTable()
for _code in range(128):
    _TABLE[_code] = _fold_char(_code)


def normalize_text(text: str) -> str:
    """Return the normalised text (same output as `normalize`, without the offset map)."""
    return text.translate(_TABLE)


def normalize(text: str) -> tuple[str, np.ndarray]:
    """Normalise `text` and map each output character back to its source index.

    Returns `(normalized, offsets)` where `offsets[i]` is the index in `text` of the character
    that produced `normalized[i]`. A span `[a, b)` of the normalised text therefore covers
    `text[offsets[a]:offsets[b - 1] + 1]`.
    """
    table = _TABLE
    pieces: list[str] = []
    offsets: list[int] = []
    for index, char in enumerate(text):
        folded = table[ord(char)]
        if folded:
            pieces.append(folded)
            offsets.extend([index] * len(folded))
    return "".join(pieces), np.asarray(offsets, dtype=np.int64)
