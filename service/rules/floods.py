"""How often an author posted lately, counted in Redis so every API replica and worker sees
the same numbers: the same text (after the normaliser) within the rule's window, and any text
within the last minute.

Each comment is a member of a sorted set scored by the time it was submitted, so counting is
idempotent: a comment decided twice (a retried task) is counted once, and a count only looks at
comments submitted at or before the one being decided, whichever worker gets there first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import redis
import structlog

from service.rules.word_lists import normalized_words

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
    """Texts that differ only in case, accents, look-alikes, spacing or punctuation share it:
    the words the word lists read, so the normaliser runs once for both."""
    return hashlib.blake2b(normalized_words(text).encode(), digest_size=12).hexdigest()


class RedisActivity:
    """An ActivityCounter on a Redis client; one round trip for a whole batch."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._script = client.register_script(_COUNT)

    def count(self, postings: Sequence[Posting]) -> list[Activity | None]:
        if not postings:
            return []
        pipe = self._client.pipeline(transaction=False)
        for p in postings:
            if p.text_key is not None:
                key = f"{KEY_PREFIX}:text:{p.site_id}:{p.author_id}:{p.text_key}"
                self._script(keys=[key], args=[p.comment_id, p.at, p.repeat_window], client=pipe)
            if p.per_minute:
                key = f"{KEY_PREFIX}:any:{p.site_id}:{p.author_id}"
                self._script(keys=[key], args=[p.comment_id, p.at, MINUTE], client=pipe)
        try:
            replies = iter(pipe.execute())
        except redis.RedisError:
            # Counting is worth less than deciding: the comment is judged by every other rule.
            log.exception("activity_count_failed", size=len(postings))
            return [None] * len(postings)
        counted: list[Activity | None] = []
        for p in postings:
            repeats = int(next(replies)) if p.text_key is not None else 0
            last_minute = int(next(replies)) if p.per_minute else 0
            counted.append(Activity(repeats, last_minute))
        return counted


# One call a key: add the comment at its time, drop what is older than twice the window (a
# comment decided late still counts those just before it), count the window up to it.
_COUNT = """
local at, window = tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], at, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', at - 2 * window)
redis.call('EXPIRE', KEYS[1], math.ceil(2 * window) + 60)
return redis.call('ZCOUNT', KEYS[1], at - window, at)
"""
