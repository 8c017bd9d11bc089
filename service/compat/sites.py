"""What every compatibility route needs of the service: the caller's site, and its verdicts."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from service.comments.inline import Judged, SiteRules, author_trust, judge_texts, site_policy
from service.http.state import AppState
from service.http.units import in_session

__all__ = ["judge_for_site"]


async def judge_for_site(
    state: AppState,
    site_id: int,
    texts: Sequence[str],
    *,
    author_id: str | None = None,
    article_id: str | None = None,
) -> list[Judged]:
    """The texts judged by the process's model under the site's policy (and the author's
    standing there, when the caller names one)."""
    settings = state.settings

    def read(session: Session) -> tuple[SiteRules, str]:
        policy = site_policy(
            session,
            site_id,
            default_thresholds=settings.thresholds,
            unsupported_language=settings.unsupported_language,
            article_id=article_id,
        )
        return policy, author_trust(session, site_id, author_id)

    policy, trust = await in_session(state, read)
    # Scored after the session closed: on SQLite the process has one connection, and intake
    # must not wait behind the model.
    return await run_in_threadpool(
        lambda: judge_texts(state.models.scorer, texts, policy, trust=trust)
    )
