"""Token buckets that cap how fast customers can send messages (security goal 5: per
connection, per IP and per tenant), so one visitor cannot run up the model bill or drown the
agents. A refused message is not stored; the client is told when to try again.

In memory here; with Redis configured the address, tenant and sign-in buckets are shared by
every worker (redis_limits.RedisRateLimiter), while a connection's own buckets stay here."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from starlette.requests import HTTPConnection

Limit = tuple[str, str, float]  # (scope, key, tokens per minute)
# Buckets of one connection: it lives on one worker, so they never need sharing.
CONNECTION_SCOPES = frozenset({"connection", "frames"})


def client_address(connection: HTTPConnection) -> str:
    """The peer's address, the key of per-IP limits (uvicorn puts the forwarded client there
    when the peer is a trusted proxy: SUPPORTLOOP_TRUSTED_PROXIES)."""
    return connection.client.host if connection.client else "unknown"


@dataclass
class Bucket:
    per_minute: float
    updated: float
    tokens: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = self.per_minute  # a full minute's burst to start with

    def refill(self, now: float) -> None:
        rate = self.per_minute / 60.0
        self.tokens = min(self.per_minute, self.tokens + (now - self.updated) * rate)
        self.updated = now

    def wait_s(self) -> float:
        """Seconds until one token is available (0 when one is)."""
        return max(0.0, (1.0 - self.tokens) * 60.0 / self.per_minute)


class RateLimiter:
    """Shared buckets keyed by (scope, key). Event-loop only: no locking needed."""

    MAX_BUCKETS = 100_000  # idle full buckets are forgotten beyond this

    def __init__(self) -> None:
        self._buckets: dict[tuple[str, str], Bucket] = {}

    async def take(self, limits: list[Limit]) -> float:
        """Take one token from every (scope, key, per_minute) bucket, or none if any is empty.
        Returns 0 when allowed, else the seconds to wait."""
        return self.take_now(limits)

    def take_now(self, limits: list[Limit]) -> float:
        now = time.monotonic()
        buckets = []
        for scope, key, per_minute in limits:
            bucket = self._buckets.get((scope, key))
            if bucket is None:
                if len(self._buckets) >= self.MAX_BUCKETS:
                    self._forget_full(now)
                bucket = self._buckets[(scope, key)] = Bucket(per_minute, updated=now)
            bucket.refill(now)
            buckets.append(bucket)
        wait = max(b.wait_s() for b in buckets)
        if wait > 0:
            return wait
        for bucket in buckets:
            bucket.tokens -= 1
        return 0.0

    def _forget_full(self, now: float) -> None:
        for key, bucket in list(self._buckets.items()):
            bucket.refill(now)
            if bucket.tokens >= bucket.per_minute:
                del self._buckets[key]
