"""Authenticated keys remembered per API process, forgotten the moment any key changes.

Authenticating is a database query on every request. A site backend sends the same key all
day, so each process remembers what a key's digest authenticated as, for `ttl` seconds at
most. Any revocation, rotation or quota change is announced on Redis (`KEYS_CHANGED`), and
every process's listener (the one subscription that also wakes waiting requests) forgets
everything at once. The cache is used only while that subscription is live: a process that
might miss an announcement asks the database every time.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Generic, TypeVar

from service.core.tables import utcnow

__all__ = ["KeyCache"]

T = TypeVar("T")


class KeyCache(Generic[T]):
    def __init__(self, *, ttl: float = 30.0, size: int = 10_000) -> None:
        self._ttl, self._size = ttl, size
        # digest -> (what it authenticated as, monotonic expiry, when the key stops working)
        self._entries: dict[str, tuple[T, float, datetime | None]] = {}
        self._generation = 0
        self._live = False

    @property
    def generation(self) -> int:
        """Read before a database look-up and handed to `put`: a change announced while the
        look-up ran makes its answer stale, and `put` then drops it."""
        return self._generation

    def get(self, digest: str) -> T | None:
        entry = self._entries.get(digest) if self._live else None
        if entry is None:
            return None
        value, expires, revoked_at = entry
        # A rotated key keeps working until its grace period ends, then not a request longer.
        if expires < time.monotonic() or (revoked_at is not None and revoked_at <= utcnow()):
            self._entries.pop(digest, None)
            return None
        return value

    def put(self, digest: str, value: T, *, revoked_at: datetime | None, generation: int) -> None:
        if not self._live or generation != self._generation:
            return
        if len(self._entries) >= self._size:
            self._entries.clear()
        self._entries[digest] = (value, time.monotonic() + self._ttl, revoked_at)

    def forget(self) -> None:
        """Some key changed: nothing remembered may be used again."""
        self._generation += 1
        self._entries.clear()

    def set_live(self, live: bool) -> None:
        """Whether announcements reach this process; what was remembered before may have
        missed one, so it is forgotten either way."""
        self.forget()
        self._live = live
