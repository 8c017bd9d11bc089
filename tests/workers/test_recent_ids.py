"""The worker's memory of what it decided lately is bounded and forgets the oldest first."""

from __future__ import annotations

from workers.app import RecentIds


def test_recent_ids_forget_the_oldest_beyond_their_size() -> None:
    recent = RecentIds(size=3)
    recent.update(["a", "b", "c"])
    recent.update(["d"])
    assert "a" not in recent
    assert all(i in recent for i in "bcd")
