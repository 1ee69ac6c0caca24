"""Limits with several workers: counted once in Redis, not once per worker, and still limiting
(per worker) when Redis is away. Each test has its own key prefix on the machine's Redis."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as redis

from chat_service.connection_caps import TooManyConnectionsError
from chat_service.redis_limits import RedisConnectionCaps, RedisRateLimiter, RedisTokenBudget

pytestmark = pytest.mark.anyio


async def test_a_tenant_limit_is_one_limit_across_workers(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    worker_a = RedisRateLimiter(redis_client, prefix=redis_prefix)
    worker_b = RedisRateLimiter(redis_client, prefix=redis_prefix)
    limit = [("tenant", "7", 6.0)]
    taken = [await worker.take(limit) for worker in (worker_a, worker_b) * 3]
    assert taken == [0.0] * 6
    refused = await worker_b.take(limit)
    assert refused == pytest.approx(10.0, abs=0.5)  # 6 a minute: the next in about 10 s
    assert await worker_a.take([("tenant", "8", 6.0)]) == 0.0  # another tenant is unaffected


async def test_a_refused_request_takes_no_token_from_the_other_buckets(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    limiter = RedisRateLimiter(redis_client, prefix=redis_prefix)
    for _ in range(2):
        assert await limiter.take([("ip", "10.0.0.1", 2.0), ("tenant", "7", 3.0)]) == 0.0
    assert await limiter.take([("ip", "10.0.0.1", 2.0), ("tenant", "7", 3.0)]) > 0
    assert await limiter.take([("tenant", "7", 3.0)]) == 0.0  # its third token is still there


async def test_a_connections_own_buckets_stay_in_its_worker(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    limiter = RedisRateLimiter(redis_client, prefix=redis_prefix)
    assert await limiter.take([("frames", "conn-1", 1.0)]) == 0.0
    assert await limiter.take([("frames", "conn-1", 1.0)]) > 0
    assert await redis_client.keys(f"{redis_prefix}:*") == []


async def test_rate_limits_still_hold_per_worker_when_redis_is_away(redis_prefix: str) -> None:
    away = redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    limiter = RedisRateLimiter(away, prefix=redis_prefix)
    try:
        assert await limiter.take([("tenant", "7", 2.0)]) == 0.0
        assert await limiter.take([("tenant", "7", 2.0)]) == 0.0
        assert await limiter.take([("tenant", "7", 2.0)]) > 0
    finally:
        await away.aclose()


async def test_connection_caps_count_every_workers_connections(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    worker_a = RedisConnectionCaps(redis_client, prefix=redis_prefix, per_ip=2, per_tenant=3)
    worker_b = RedisConnectionCaps(redis_client, prefix=redis_prefix, per_ip=2, per_tenant=3)
    try:
        async with worker_a.hold("10.0.0.1", 7), worker_b.hold("10.0.0.1", 7):
            with pytest.raises(TooManyConnectionsError, match="from this address"):
                async with worker_a.hold("10.0.0.1", 7):
                    pass
            async with worker_b.hold("10.0.0.2", 7):
                with pytest.raises(TooManyConnectionsError, match="full"):
                    async with worker_a.hold("10.0.0.3", 7):
                        pass
        async with worker_b.hold("10.0.0.1", 7), worker_b.hold("10.0.0.1", 7):
            pass  # released connections no longer count
    finally:
        await worker_a.close()
        await worker_b.close()


async def test_the_connections_of_a_worker_that_died_are_forgotten(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    caps = RedisConnectionCaps(redis_client, prefix=redis_prefix, per_ip=1, per_tenant=10)
    # A worker that died holding a connection: its member is never renewed nor removed.
    seconds, micros = await redis_client.time()
    expires_ms = seconds * 1000 + micros // 1000 + 1000
    await redis_client.zadd(f"{redis_prefix}:conns:ip:10.0.0.1", {"dead-worker": expires_ms})
    with pytest.raises(TooManyConnectionsError):
        async with caps.hold("10.0.0.1", 7):
            pass
    await asyncio.sleep(1.1)
    async with caps.hold("10.0.0.1", 7):
        pass
    await caps.close()


async def test_the_daily_token_budget_is_shared_by_every_worker(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    worker_a = RedisTokenBudget(redis_client, prefix=redis_prefix, daily_tokens=100)
    worker_b = RedisTokenBudget(redis_client, prefix=redis_prefix, daily_tokens=100)
    await worker_a.spend(7, 60)
    assert not await worker_b.exhausted(7)
    await worker_b.spend(7, 50)
    assert await worker_a.exhausted(7) and await worker_b.exhausted(7)
    assert not await worker_a.exhausted(8)
    ttl = await redis_client.ttl(worker_a._key(7))
    assert 0 < ttl <= 2 * 24 * 3600  # yesterday's counters go away on their own


async def test_an_idle_bucket_expires_once_it_would_be_full_again(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    limiter = RedisRateLimiter(redis_client, prefix=redis_prefix)
    started = time.monotonic()
    await limiter.take([("tenant", "7", 6.0)])
    ttl_ms = await redis_client.pttl(f"{redis_prefix}:bucket:tenant:7")
    assert 60_000 <= ttl_ms + (time.monotonic() - started) * 1000 <= 61_500
