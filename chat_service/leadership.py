"""Work that one worker of a deployment does on behalf of all: publishing the adapters the
nightly loop approved, and unloading versions from an engine the workers share (vLLM).

In one process that worker is this one. With Redis, a worker is the leader while it holds
``{prefix}:leader:{role}``; it renews the key each time it asks, so the lead stays with one
worker while it lives and passes to another within ``ttl_s`` after it dies. Callers ask before
each round of such work and skip the round when another worker leads.
"""

from __future__ import annotations

import logging
import uuid
from typing import Protocol

import redis.asyncio as redis

log = logging.getLogger(__name__)

# Take the key if free, or extend it if it is already ours; 1 when we lead.
_LEAD = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('pexpire', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


class Leadership(Protocol):
    async def leads(self, role: str) -> bool: ...


class SoleWorker:
    async def leads(self, role: str) -> bool:
        return True


class RedisLeadership:
    def __init__(self, client: redis.Redis, *, prefix: str, ttl_s: float) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl_ms = int(ttl_s * 1000)
        self._me = uuid.uuid4().hex
        self._leading: set[str] = set()

    async def leads(self, role: str) -> bool:
        try:
            led = bool(
                await self._client.eval(
                    _LEAD, 1, f"{self._prefix}:leader:{role}", self._me, self._ttl_ms
                )
            )
        except (redis.RedisError, OSError) as exc:
            log.warning("leadership of %s unknown (Redis: %s); skipping this round", role, exc)
            return False
        if led != (role in self._leading):
            log.info("%s %s", "leading" if led else "no longer leading", role)
            (self._leading.add if led else self._leading.discard)(role)
        return led
