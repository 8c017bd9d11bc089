"""How often an author posted lately, counted in Redis so every API replica and worker sees
the same numbers: the same text (after the normaliser) within the rule's window, and any text
within the last minute.

Each comment is a member of a sorted set scored by the time it was submitted, so counting is
idempotent: a comment decided twice (a retried task) is counted once, and a count only looks at
comments submitted at or before the one being decided, whichever worker gets there first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import redis
import structlog

from classifier.normalize import normalize_text

__all__ = ["Activity", "ActivityCounter", "Posting", "RedisActivity", "text_key"]

log = structlog.get_logger(__name__)
MINUTE = 60.0
KEY_PREFIX = "moderation:activity"


@dataclass(frozen=True)
class Posting:
    """One comment to count: whose, when (epoch seconds), and what to count it under."""

    site_id: int
    author_id: int
    comment_id: str
    at: float
    text_key: str | None  # None: the repeat rule is off for it
    repeat_window: float  # seconds
    per_minute: bool  # whether the flood rule is on for it


@dataclass(frozen=True)
class Activity:
    repeats: int  # comments of the same text in the window, this one included
    last_minute: int  # comments in the minute up to this one, this one included


class ActivityCounter(Protocol):
    def count(self, postings: Sequence[Posting]) -> list[Activity | None]: ...


def text_key(text: str) -> str:
    """Texts that differ only in case, accents, look-alikes, spacing or punctuation share it."""
    words = " ".join(normalize_text(text).split())
    folded = "".join(ch for ch in words if ch.isalnum() or ch == " ")
    return hashlib.blake2b(folded.encode(), digest_size=12).hexdigest()


class RedisActivity:
    """An ActivityCounter on a Redis client; one round trip for a whole batch."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def count(self, postings: Sequence[Posting]) -> list[Activity | None]:
        if not postings:
            return []
        pipe = self._client.pipeline(transaction=False)
        for p in postings:
            if p.text_key is not None:
                _count(
                    pipe,
                    f"{KEY_PREFIX}:text:{p.site_id}:{p.author_id}:{p.text_key}",
                    p,
                    p.repeat_window,
                )
            if p.per_minute:
                _count(pipe, f"{KEY_PREFIX}:any:{p.site_id}:{p.author_id}", p, MINUTE)
        try:
            replies = iter(pipe.execute())
        except redis.RedisError:
            # Counting is worth less than deciding: the comment is judged by every other rule.
            log.exception("activity_count_failed", size=len(postings))
            return [None] * len(postings)
        counted: list[Activity | None] = []
        for p in postings:
            repeats = _reply(replies) if p.text_key is not None else 0
            last_minute = _reply(replies) if p.per_minute else 0
            counted.append(Activity(repeats, last_minute))
        return counted


def _count(pipe: redis.client.Pipeline, key: str, p: Posting, window: float) -> None:
    pipe.zadd(key, {p.comment_id: p.at})
    # Keep twice the window: a comment decided late still counts those just before it.
    pipe.zremrangebyscore(key, "-inf", p.at - 2 * window)
    pipe.zcount(key, p.at - window, p.at)
    pipe.expire(key, int(2 * window) + 60)


def _reply(replies: Iterator[Any]) -> int:
    """The ZCOUNT of the four commands `_count` sent."""
    _added, _trimmed, counted, _expiry = (next(replies) for _ in range(4))
    return int(counted)
