"""The flood counter when Redis is away: every comment is still judged, the rule cannot fire."""

from __future__ import annotations

import redis

from service.rules.floods import Posting, RedisActivity, text_key
from tests.stack import free_port


def test_a_dead_redis_counts_nothing_and_fails_no_comment() -> None:
    dead = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2)
    posting = Posting(1, 7, "c1", 1000.0, text_key("Vote NO"), 600.0, per_minute=True)
    assert RedisActivity(dead).count([posting, posting]) == [None, None]
