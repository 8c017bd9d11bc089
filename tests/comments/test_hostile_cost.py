"""Hostile comments cost a worker bounded work: what language detection reads, what a decision
stores. (How long they take is measured by bench/adversarial.py, not asserted here.)"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from classifier import ATTRIBUTES
from service.comments.decisions import EXPLAIN_TOP_K, decide_comments
from service.comments.intake import submit_comment
from service.comments.schemas import CommentIn
from service.core.db import session_scope
from service.rules import language
from service.rules.language import MAX_FOLDED_CHARS, detect_language
from service.sites.keys import get_or_create_site
from tests.factories import default_scorer

HOSTILE = {
    "U+FDFA run": "\ufdfa" * 10_000,  # NFKC: 18 characters each
    "U+33D8 run": "\u33d8" * 10_000,  # "p.m."
    "zero-width": "\u200b" * 10_000,
    "one long word": "idiot" * 2_000,
    "nested tags": "<div>" * 2_000,
    "e-mail-like run": "x@" * 5_000,
    "one-digit tokens": "\u00bd" * 10_000,
}


class _ReadingDetector:
    """The real detector, keeping each text it was given."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.texts: list[str] = []

    def classify(self, text: str) -> Any:
        self.texts.append(text)
        return self.inner.classify(text)

    def rank(self, text: str) -> Any:
        self.texts.append(text)
        return self.inner.rank(text)


@pytest.fixture
def detector(monkeypatch: pytest.MonkeyPatch) -> _ReadingDetector:
    reading = _ReadingDetector(language.load_detector())
    monkeypatch.setattr(language, "load_detector", lambda: reading)
    return reading


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_language_detection_reads_a_bounded_text_whatever_nfkc_makes_of_it(
    detector: _ReadingDetector, text: str
) -> None:
    detect_language(text)
    assert all(len(t) <= MAX_FOLDED_CHARS for t in detector.texts)


def test_an_ordinary_comment_reaches_the_detector_whole(detector: _ReadingDetector) -> None:
    # Fullwidth T, an ellipsis, and no English-only word, which would settle it without the
    # detector.
    text = "\uff34oday, minister\u2019s reply\u2026 was long. " * 40
    assert detect_language(text).is_english
    folded = text.replace("\uff34", "T").replace("\u2026", "...")
    assert detector.texts == [" ".join(folded.split())]


def test_e_mail_addresses_are_still_taken_out_before_detection(
    detector: _ReadingDetector,
) -> None:
    detect_language(
        "Write to bob.smith@example.co.uk, <b>ann@news.org</b> or (joe@mail.com) before voting"
    )
    (seen,) = detector.texts
    assert "@" not in seen
    assert "example" not in seen and "news" not in seen and "mail" not in seen
    assert seen.startswith("Write to") and seen.endswith("before voting")


def _submit(sessions: sessionmaker[Session], texts: dict[str, str]) -> dict[str, str]:
    ids = {}
    with session_scope(sessions) as session:
        site_id = get_or_create_site(session, "news").id
        for name, text in texts.items():
            payload = CommentIn(external_id=name, article_id="a", author_id="u", text=text)
            ids[name] = submit_comment(session, site_id, payload, max_text_chars=10_000).comment.id
    return ids


def test_hostile_comments_are_decided_with_bounded_explanations(
    sessions: sessionmaker[Session],
) -> None:
    ids = _submit(sessions, HOSTILE)
    hold_everything = dict.fromkeys(ATTRIBUTES, 0.0)  # every scored comment is explained
    with session_scope(sessions) as session:
        decided = decide_comments(
            session, list(ids.values()), default_scorer(), default_thresholds=hold_everything
        )
        assert sorted(d.comment_id for d in decided) == sorted(ids.values())
        explained = 0
        for d in decided:
            text = HOSTILE[d.external_id]
            for reason in d.decision.reasons:
                spans = reason.get("spans", [])
                explained += bool(spans)
                assert len(spans) <= EXPLAIN_TOP_K
                assert all(text[s["start"] : s["end"]] == s["text"] for s in spans)
    assert explained > 0, "some hostile comment must have been scored and explained"
