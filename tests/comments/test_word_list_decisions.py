"""A site's word lists in its decisions, on SQLite and PostgreSQL: a banned entry rejects
unscored, a suspect one holds, and a changed list is followed at once."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.core.db import session_scope
from service.core.tables import Comment, Decision
from service.rules.word_lists import get_list, set_list
from tests.factories import decide_texts

CIVIL = "Thank you for the careful reporting on the ceasefire negotiations in Doha."


def _decision(sessions: sessionmaker[Session], comment_id: str) -> tuple[str, Decision]:
    with sessions() as session:
        comment = session.get_one(Comment, comment_id)
        decision = session.scalars(select(Decision).where(Decision.comment_id == comment_id)).one()
        return comment.status, decision


def test_banned_words_reject_unscored_and_suspect_words_hold(
    sessions: sessionmaker[Session],
) -> None:
    decide_texts(sessions, ["Hello."])  # the site exists
    with session_scope(sessions) as session:
        set_list(session, "news", "banned", ["scumbag*"], actor="admin")
        set_list(session, "news", "suspect", ["ceasefire"], actor="admin")
        assert get_list(session, "news", "banned")["entries"] == ["scumbag*"]
    text = "Only SCUMBAGS would sign this deal."
    _, (banned, suspect) = decide_texts(sessions, [text, CIVIL], prefix="w")
    status, decision = _decision(sessions, banned)
    (reason,) = decision.reasons
    assert (status, decision.action, decision.scores) == ("rejected", "reject", {})
    assert reason["code"] == "banned_word" and reason["matched"] == ["scumbag*"]
    (span,) = reason["spans"]
    assert text[span["start"] : span["end"]] == span["text"] == "SCUMBAGS"

    status, decision = _decision(sessions, suspect)
    assert (status, decision.action) == ("held", "hold")
    assert decision.scores, "a suspect word still gets its scores"
    assert decision.reasons[0]["code"] == "suspect_word"
    assert decision.reasons[0]["spans"][0]["text"] == "ceasefire"


def test_a_changed_list_is_followed_on_the_next_batch(sessions: sessionmaker[Session]) -> None:
    decide_texts(sessions, ["Hello."])
    with session_scope(sessions) as session:
        set_list(session, "news", "suspect", ["ceasefire"], actor="admin")
    _, (before,) = decide_texts(sessions, [CIVIL], prefix="a")
    with session_scope(sessions) as session:
        set_list(session, "news", "suspect", [], actor="admin")
    _, (after,) = decide_texts(sessions, [CIVIL], prefix="b")
    assert _decision(sessions, before)[0] == "held"
    assert _decision(sessions, after)[0] == "approved"
