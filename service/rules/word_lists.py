"""A site's word lists: `banned` (rejected without a human) and `suspect` (held), matched on
whole words after the classifier's normaliser, in one pass of an Aho-Corasick automaton.

An entry is a word or a phrase ("shut up"), optionally ending in `*` for every word that begins
so (`idiot*` matches "idiots" and "idiotic"; `idiot` matches neither). Entries and comments go
through the same normaliser (case, accents, look-alike letters, leetspeak, zero-width
characters, markup), then both are cut into words, so "1d10t", fullwidth "IDIOT" and "id\u200biot"
match `idiot`, while "idiotic" does not. A match carries its span as offsets into the original
text. Matching costs one pass over the comment whatever the number of entries
(`pyahocorasick`), not a regular expression per entry.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import ahocorasick
import numpy as np
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from classifier.normalize import normalize, normalize_text
from service.core.audit import audit_site
from service.core.db import PerDatabase
from service.core.errors import InvalidInput
from service.core.lookup import site_named
from service.core.tables import Site, WordListRow, utcnow
from service.rules.reasons import Reason

__all__ = [
    "KINDS",
    "MAX_ENTRIES",
    "MAX_ENTRY_CHARS",
    "ListMatch",
    "SiteLists",
    "WordList",
    "clean_entries",
    "current_lists",
    "get_list",
    "list_reason",
    "normalized_words",
    "set_list",
    "site_lists",
]

KINDS = ("banned", "suspect")
MAX_ENTRIES = 10_000
MAX_ENTRY_CHARS = 100
MIN_PREFIX_CHARS = 3  # `a*` would match a third of any text
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class ListMatch:
    entry: str  # as the site wrote it
    start: int  # offsets into the original text
    end: int
    text: str


def _words(normalized: str) -> list[str]:
    return _WORD.findall(normalized)


def clean_entries(entries: Sequence[str], *, field: str = "entries") -> list[str]:
    """The entries as they will be stored (trimmed, deduplicated, in order); InvalidInput
    naming the field for one that is empty, too long, of no word, or a wildcard too short."""
    if len(entries) > MAX_ENTRIES:
        raise InvalidInput(f"at most {MAX_ENTRIES} entries in one list", field=field)
    kept: dict[str, str] = {}
    for i, raw in enumerate(entries):
        entry = " ".join(str(raw).split())
        where = f"{field}[{i}]"
        if not entry:
            raise InvalidInput("an entry must not be empty", field=where)
        if len(entry) > MAX_ENTRY_CHARS:
            raise InvalidInput(f"an entry is at most {MAX_ENTRY_CHARS} characters", field=where)
        prefix = entry.endswith("*")
        body = entry.rstrip("*")
        if "*" in body:
            raise InvalidInput("`*` may only end an entry (`idiot*`)", field=where)
        words = _words(normalize_text(body))
        if not words:
            raise InvalidInput(f"{entry!r} holds no word to match", field=where)
        if prefix and len(words[-1]) < MIN_PREFIX_CHARS:
            raise InvalidInput(
                f"a wildcard needs at least {MIN_PREFIX_CHARS} letters before `*`: {entry!r} "
                "would match nearly every comment",
                field=where,
            )
        kept.setdefault(" ".join(words) + ("*" if prefix else ""), entry)
    return list(kept.values())


class WordList:
    """One compiled list; `find` returns every entry found in a text."""

    def __init__(self, entries: Sequence[str]) -> None:
        self.entries = list(entries)
        self._automaton: ahocorasick.Automaton | None = None
        if not self.entries:
            return
        automaton = ahocorasick.Automaton()
        for entry in self.entries:
            prefix = entry.endswith("*")
            key = " " + " ".join(_words(normalize_text(entry.rstrip("*"))))
            # A whole word ends at a space; a wildcard's last word may run on.
            key = key if prefix else key + " "
            automaton.add_word(key, (entry, prefix, len(key)))
        automaton.make_automaton()
        self._automaton = automaton

    def find(self, text: str) -> list[ListMatch]:
        if self._automaton is None or not text:
            return []
        words = _prepared(text)
        found: list[ListMatch] = []
        seen: set[tuple[str, int]] = set()
        for last, (entry, prefix, key_length) in self._automaton.iter(words.joined):
            first_word = bisect.bisect_left(words.starts, last - key_length + 2)
            end_char = last if prefix else last - 1  # index in `joined` of the match's last char
            last_word = bisect.bisect_right(words.starts, end_char) - 1
            if (entry, first_word) in seen:
                continue
            seen.add((entry, first_word))
            offsets = words.offsets()
            start = int(offsets[words.spans[first_word][0]])
            end = int(offsets[words.spans[last_word][1] - 1]) + 1
            found.append(ListMatch(entry, start, end, text[start:end]))
        return found


class _Words:
    """A text's words joined by single spaces, where each begins in that string, and (only
    once a list found something) the map from normalised characters to original ones."""

    def __init__(self, text: str) -> None:
        self._text = text
        normalized = normalize_text(text)
        self.spans = [(m.start(), m.end()) for m in _WORD.finditer(normalized)]
        self.joined = " " + " ".join(normalized[a:b] for a, b in self.spans) + " "
        self.starts: list[int] = []
        at = 1
        for a, b in self.spans:
            self.starts.append(at)
            at += b - a + 1
        self._offsets: np.ndarray | None = None

    def offsets(self) -> np.ndarray:
        if self._offsets is None:
            self._offsets = normalize(self._text)[1]
        return self._offsets


def normalized_words(text: str) -> str:
    """The text's words after the classifier's normaliser, one space apart, as both lists
    read them (and computed once for both, and for the flood rule's text key)."""
    return _prepared(text).joined.strip()


@functools.lru_cache(maxsize=256)
def _prepared(text: str) -> _Words:
    # Both lists, and both moments of a decision (the banned list before scoring, the suspect
    # one after), read the same text: cut it into words once.
    return _Words(text)


@dataclass(frozen=True)
class SiteLists:
    """A site's two lists, compiled, as of `version` (Site.lists_version)."""

    version: int
    banned: WordList
    suspect: WordList


# Each site's lists as this process last compiled them.
_COMPILED: PerDatabase[int, SiteLists] = PerDatabase()


def current_lists(session: Session, site_id: int, version: int) -> SiteLists:
    """The site's lists at `version` (its Site.lists_version), compiled once per change."""
    kept = _COMPILED.of(session)
    known = kept.get(site_id)
    if known is None or known.version != version:
        known = kept[site_id] = site_lists(session, site_id, version)
    return known


def site_lists(session: Session, site_id: int, version: int) -> SiteLists:
    rows = {
        row.kind: row.entries
        for row in session.scalars(select(WordListRow).where(WordListRow.site_id == site_id))
    }
    return SiteLists(version, WordList(rows.get("banned", [])), WordList(rows.get("suspect", [])))


def list_reason(kind: str, matches: Sequence[ListMatch]) -> dict[str, object]:
    """The decision's reason for what a list found: the entries, and where each was."""
    return {
        "code": Reason.BANNED_WORD if kind == "banned" else Reason.SUSPECT_WORD,
        "matched": sorted({m.entry for m in matches}),
        "spans": [{"text": m.text, "start": m.start, "end": m.end} for m in matches[:10]],
    }


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise InvalidInput(f"a list is one of: {', '.join(KINDS)}", field="kind")
    return kind


def get_list(session: Session, site_name: str, kind: str) -> dict[str, object]:
    site = site_named(session, site_name)
    row = session.get(WordListRow, (site.id, _kind(kind)))
    return {
        "site": site.name,
        "kind": kind,
        "entries": list(row.entries) if row else [],
        "updated_at": row.updated_at if row else None,
    }


def set_list(
    session: Session, site_name: str, kind: str, entries: Sequence[str], *, actor: str
) -> dict[str, object]:
    """Replace the site's list; the workers follow on their next batch (`lists_version`)."""
    site = site_named(session, site_name)
    cleaned = clean_entries(entries)
    row = session.get(WordListRow, (site.id, _kind(kind)))
    before = len(row.entries) if row else 0
    if row is None:
        row = WordListRow(site_id=site.id, kind=kind, entries=cleaned, updated_at=utcnow())
        session.add(row)
    else:
        row.entries, row.updated_at = cleaned, utcnow()
    session.execute(
        update(Site)
        .where(Site.id == site.id)
        .values(lists_version=Site.lists_version + 1)
        .execution_options(synchronize_session=False)
    )
    counts = {"kind": kind, "entries_before": before, "entries_after": len(cleaned)}
    audit_site(session, site.id, actor, "site.word_list_changed", counts)
    session.flush()
    return get_list(session, site_name, kind)
