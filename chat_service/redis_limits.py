"""Abuse limits counted in Redis, so that N workers enforce one limit rather than N of them.

The same three limits as in one process (rate_limit.py, connection_caps.py, token_budget.py),
each an atomic Lua script on Redis's own clock (workers' clocks may disagree):

- token buckets: every bucket of a request is refilled and checked, and a token is taken from
  all of them or none; an idle bucket's key expires once it would be full again;
- open connections: one sorted set per client address and per tenant, a member per connection
  scored with its expiry; the holding worker renews its members, so the connections of a worker
  that died are forgotten after ``CONNECTION_TTL_S`` instead of counting forever;
- tokens generated today: one counter per tenant per UTC day.

Buckets that belong to one connection (its frames and messages) stay in the worker's memory:
a connection lives on one worker, and a Redis round trip per frame would buy nothing.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import redis.asyncio as redis

from chat_service.connection_caps import TooManyConnectionsError, refusal
from chat_service.rate_limit import CONNECTION_SCOPES, Limit, RateLimiter
from chat_service.token_budget import BUDGET, TOKENS_TODAY

log = logging.getLogger(__name__)
CONNECTION_TTL_S = 60

# KEYS: buckets; ARGV: per-minute sizes. Returns the milliseconds to wait (0: token taken).
_TAKE = """
local now_parts = redis.call('time')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local wait, tokens = 0, {}
for i, key in ipairs(KEYS) do
  local size = tonumber(ARGV[i])
  local rate = size / 60000
  local state = redis.call('hmget', key, 'tokens', 'at')
  local t = tonumber(state[1]) or size
  local at = tonumber(state[2]) or now
  t = math.min(size, t + math.max(0, now - at) * rate)
  tokens[i] = t
  if t < 1 then wait = math.max(wait, math.ceil((1 - t) / rate)) end
end
for i, key in ipairs(KEYS) do
  local t = tokens[i]
  if wait == 0 then t = t - 1 end
  redis.call('hset', key, 'tokens', tostring(t), 'at', now)
  redis.call('pexpire', key, 61000)
end
return wait
"""

# KEYS: the address's set, the tenant's set; ARGV: member, ttl ms, cap per address, per tenant.
# Returns 0 when admitted, 1 when the address is full, 2 when the tenant is.
_ADMIT = """
local now_parts = redis.call('time')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
for i, key in ipairs(KEYS) do
  redis.call('zremrangebyscore', key, '-inf', now)
  if redis.call('zcard', key) >= tonumber(ARGV[i + 2]) then return i end
end
for _, key in ipairs(KEYS) do
  redis.call('zadd', key, now + tonumber(ARGV[2]), ARGV[1])
  redis.call('pexpire', key, tonumber(ARGV[2]))
end
return 0
"""

# KEYS: pairs of sets; ARGV[1]: ttl ms, then one member per pair.
_RENEW = """
local now_parts = redis.call('time')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i = 1, #KEYS do
  local member = ARGV[math.floor((i + 1) / 2) + 1]
  redis.call('zadd', KEYS[i], 'XX', now + ttl, member)
  redis.call('pexpire', KEYS[i], ttl)
end
return 0
"""


class RedisRateLimiter(RateLimiter):
    def __init__(self, client: redis.Redis, *, prefix: str) -> None:
        super().__init__()
        self._client = client
        self._prefix = prefix

    async def take(self, limits: list[Limit]) -> float:
        local = [limit for limit in limits if limit[0] in CONNECTION_SCOPES]
        shared = [limit for limit in limits if limit[0] not in CONNECTION_SCOPES]
        if local and (wait := await super().take(local)) > 0:
            return wait
        if not shared:
            return 0.0
        keys = [f"{self._prefix}:bucket:{scope}:{key}" for scope, key, _ in shared]
        try:
            wait_ms = await self._client.eval(
                _TAKE, len(keys), *keys, *[repr(float(size)) for _, _, size in shared]
            )
        except (redis.RedisError, OSError) as exc:
            # Redis away: this worker's own buckets still limit (per worker, as in one process).
            log.warning("rate limits counted in this worker only: %s", exc)
            return super().take_now(shared)
        return int(wait_ms) / 1000


class RedisConnectionCaps:
    def __init__(self, client: redis.Redis, *, prefix: str, per_ip: int, per_tenant: int) -> None:
        self.per_ip = per_ip
        self.per_tenant = per_tenant
        self._client = client
        self._prefix = prefix
        self._held: dict[str, tuple[str, str]] = {}  # member -> its two sets
        self._renewer: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def hold(self, ip: str, tenant_id: int) -> AsyncIterator[None]:
        member = uuid.uuid4().hex
        keys = (f"{self._prefix}:conns:ip:{ip}", f"{self._prefix}:conns:tenant:{tenant_id}")
        try:
            refused = await self._client.eval(
                _ADMIT, 2, *keys, member, CONNECTION_TTL_S * 1000, self.per_ip, self.per_tenant
            )
        except (redis.RedisError, OSError) as exc:
            # Redis away: admitting beats refusing every customer; the per-process reply
            # slots and rate limits still bound the work a connection can cause.
            log.warning("connection caps not checked (%s): %s", keys[1], exc)
            refused = 0
        if refused:
            raise TooManyConnectionsError(refusal(self.per_ip, by_address=int(refused) == 1))
        self._held[member] = keys
        self._ensure_renewer()
        try:
            yield
        finally:
            del self._held[member]
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for key in keys:
                        pipe.zrem(key, member)
                    await pipe.execute()
            except (redis.RedisError, OSError) as exc:  # it expires on its own
                log.warning("connection count not released (%s): %s", keys[1], exc)

    def _ensure_renewer(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew_loop(), name="connection-caps")

    async def _renew_loop(self) -> None:
        while self._held:
            await asyncio.sleep(CONNECTION_TTL_S / 3)
            held = list(self._held.items())
            try:
                for start in range(0, len(held), 500):
                    chunk = held[start : start + 500]
                    keys = [key for _, pair in chunk for key in pair]
                    await self._client.eval(
                        _RENEW,
                        len(keys),
                        *keys,
                        CONNECTION_TTL_S * 1000,
                        *[member for member, _ in chunk],
                    )
            except (redis.RedisError, OSError) as exc:
                log.warning("open connections not renewed in Redis: %s", exc)

    async def close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)


class RedisTokenBudget:
    def __init__(self, client: redis.Redis, *, prefix: str, daily_tokens: int) -> None:
        self.daily_tokens = daily_tokens
        self._client = client
        self._prefix = prefix
        BUDGET.set(daily_tokens)

    def _key(self, tenant_id: int) -> str:
        return f"{self._prefix}:tokens:{tenant_id}:{datetime.now(UTC).date().isoformat()}"

    async def exhausted(self, tenant_id: int) -> bool:
        if self.daily_tokens <= 0:
            return False
        try:
            used = await self._client.get(self._key(tenant_id))
        except (redis.RedisError, OSError) as exc:  # the reply slots still bound the work
            log.warning("tenant=%s token budget not checked: %s", tenant_id, exc)
            return False
        return int(used or 0) >= self.daily_tokens

    async def spend(self, tenant_id: int, tokens: int) -> None:
        key = self._key(tenant_id)
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.incrby(key, tokens)
                pipe.expire(key, 2 * 24 * 3600)
                used, _ = await pipe.execute()
        except (redis.RedisError, OSError) as exc:
            log.warning("tenant=%s %d tokens not counted: %s", tenant_id, tokens, exc)
            return
        TOKENS_TODAY.labels(str(tenant_id)).set(int(used))
