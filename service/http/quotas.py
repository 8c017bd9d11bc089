"""Quotas shared by every API replica, counted in Redis: requests per key, and failed sign-ins
per client address (so that guessing keys is as slow as it is visible).

Counting uses the `limits` library's moving window over the same Redis the queue uses. If
Redis is away, requests are let through: a quota must not turn a Redis outage into an outage
of intake, which stores comments without Redis.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import structlog
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from service.core.errors import RateLimited

__all__ = ["QuotaRules", "Quotas", "limits_uri"]

log = structlog.get_logger(__name__)


def limits_uri(redis_url: str) -> str:
    """The `limits` storage URI of a Redis URL (redis://, rediss:// or unix://)."""
    if redis_url.startswith("unix://"):
        return "async+redis+unix://" + redis_url.removeprefix("unix://")
    return f"async+{redis_url}"


@dataclass(frozen=True)
class QuotaRules:
    """`burst` requests at once per key, refilling at `per_second`; `failures` failed
    authentications per address per minute."""

    per_second: float
    burst: int
    failures_per_minute: int
    anonymous_per_minute: int = 600

    def key_item(self, per_second: float | None, burst: int | None) -> RateLimitItem:
        """A key's quota: its site's where set, else the deployment's."""
        rate, size = per_second or self.per_second, burst or self.burst
        # A burst of N at R a second is N requests in any window of N / R seconds.
        return RateLimitItemPerSecond(size, max(1, round(size / rate)))

    @property
    def failures(self) -> RateLimitItem:
        return RateLimitItemPerSecond(self.failures_per_minute, 60)

    @property
    def anonymous(self) -> RateLimitItem:
        return RateLimitItemPerSecond(self.anonymous_per_minute, 60)


# Keys that authenticated here lately skip the address check: a site backend's every request
# would otherwise pay a second Redis call (measured: 10% of the pipeline's throughput). A guess
# is never among them, so guessing still meets the check first.
_VOUCHED_SECONDS = 60.0
_VOUCHED_MAX = 4096


class Quotas:
    def __init__(self, storage: Storage, rules: QuotaRules) -> None:
        self._limiter = MovingWindowRateLimiter(storage)
        self.rules = rules
        self._vouched: dict[str, float] = {}  # digest of a key -> until when

    def vouch(self, digest: str) -> None:
        """Remember that the key of this digest (`hash_key`) just authenticated (this process
        only, for a minute)."""
        if len(self._vouched) >= _VOUCHED_MAX:
            self._vouched.clear()
        self._vouched[digest] = time.monotonic() + _VOUCHED_SECONDS

    def vouched(self, digest: str | None) -> bool:
        until = self._vouched.get(digest) if digest else None
        return until is not None and until > time.monotonic()

    @classmethod
    def on_redis(cls, redis_url: str, rules: QuotaRules) -> Quotas:
        """Counted in the deployment's Redis, so that every API replica shares them."""
        return cls(RedisStorage(limits_uri(redis_url), implementation="redispy"), rules)

    async def _retry_after(self, item: RateLimitItem, *identifiers: str) -> int:
        stats = await self._limiter.get_window_stats(item, *identifiers)
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def _wait(self, item: RateLimitItem, *identifiers: str, count: bool) -> int | None:
        """Seconds to wait when `identifiers` are over `item` (counting this request when
        `count`), else None; None too when Redis is away: the request is let through."""
        try:
            if count:
                allowed = await self._limiter.hit(item, *identifiers)
            else:
                allowed = await self._limiter.test(item, *identifiers)
            return None if allowed else await self._retry_after(item, *identifiers)
        except Exception as exc:
            log.warning("quota_unavailable", error=str(exc)[:200])
            return None

    async def charge_key(
        self, key_id: int, *, per_second: float | None = None, burst: int | None = None
    ) -> None:
        """Count one request of the key; RateLimited when it is over its quota (its site's
        `per_second` and `burst` where set, else the deployment's)."""
        item = self.rules.key_item(per_second, burst)
        wait = await self._wait(item, "key", str(key_id), count=True)
        if wait is not None:
            raise RateLimited(
                f"this key is over its quota of {burst or self.rules.burst} requests at once, "
                f"{per_second or self.rules.per_second:g} a second; retry in {wait} s",
                retry_after=wait,
            )

    async def check_address(self, address: str) -> None:
        """RateLimited when the address failed to authenticate too often of late."""
        wait = await self._wait(self.rules.failures, "auth-failed", address, count=False)
        if wait is not None:
            raise RateLimited(
                f"too many failed authentications from this address; retry in {wait} s",
                retry_after=wait,
            )

    async def charge_address(self, address: str) -> None:
        """Count one request without a key from the address; RateLimited over its quota."""
        wait = await self._wait(self.rules.anonymous, "anonymous", address, count=True)
        if wait is not None:
            raise RateLimited(
                f"too many requests from this address; retry in {wait} s", retry_after=wait
            )

    async def count_failure(self, address: str, *, key_prefix: str, reason: str) -> None:
        """Count and log a failed authentication (never the key itself: its prefix)."""
        log.warning("auth_failed", address=address, key_prefix=key_prefix, reason=reason)
        try:
            await self._limiter.hit(self.rules.failures, "auth-failed", address)
        except Exception as exc:
            log.warning("quota_unavailable", error=str(exc)[:200])
