"""What the workers of one deployment must agree on, in memory for one process or in Redis for
several: the live-event hub, which worker answers a conversation, the abuse limits, and which
worker publishes adapters.

One process (no `SUPPORTLOOP_REDIS_URL`) is the zero-config default and needs no Redis. With
Redis, every worker on every machine shares the same hub channel, reply leases, buckets,
connection counts and token budgets under `SUPPORTLOOP_REDIS_PREFIX`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import redis.asyncio as redis

from chat_service.connection_caps import Caps, ConnectionCaps
from chat_service.hub import ConversationHub
from chat_service.leadership import Leadership, RedisLeadership, SoleWorker
from chat_service.rate_limit import RateLimiter
from chat_service.redis_hub import RedisHub, redact_url
from chat_service.redis_limits import RedisConnectionCaps, RedisRateLimiter, RedisTokenBudget
from chat_service.reply_leases import LocalReplyLeases, RedisReplyLeases, ReplyLeases
from chat_service.token_budget import Budget, TokenBudget
from core.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Coordination:
    hub: ConversationHub
    reply_leases: ReplyLeases
    rate_limiter: RateLimiter
    connection_caps: Caps
    token_budget: Budget
    leadership: Leadership
    _closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def close(self) -> None:
        for close in reversed(self._closers):
            await close()


def in_memory(settings: Settings) -> Coordination:
    return Coordination(
        hub=ConversationHub(),
        reply_leases=LocalReplyLeases(),
        rate_limiter=RateLimiter(),
        connection_caps=ConnectionCaps(
            per_ip=settings.widget_connections_per_ip,
            per_tenant=settings.widget_connections_per_tenant,
        ),
        token_budget=TokenBudget(settings.tenant_daily_tokens),
        leadership=SoleWorker(),
    )


async def start_coordination(settings: Settings) -> Coordination:
    if not settings.redis_url:
        return in_memory(settings)
    prefix = settings.redis_prefix
    client = redis.from_url(settings.redis_url)
    await client.ping()  # a wrong URL fails the start, not the first customer
    hub = RedisHub(client, channel=f"{prefix}:events")
    await hub.start()
    caps = RedisConnectionCaps(
        client,
        prefix=prefix,
        per_ip=settings.widget_connections_per_ip,
        per_tenant=settings.widget_connections_per_tenant,
    )
    log.info(
        "workers coordinate over Redis (%s, prefix %s)", redact_url(settings.redis_url), prefix
    )
    return Coordination(
        hub=hub,
        reply_leases=RedisReplyLeases(client, prefix=prefix, ttl_s=settings.reply_lease_s),
        rate_limiter=RedisRateLimiter(client, prefix=prefix),
        connection_caps=caps,
        token_budget=RedisTokenBudget(
            client, prefix=prefix, daily_tokens=settings.tenant_daily_tokens
        ),
        # Renewed at every adapter sync; another worker takes over a few syncs after it dies.
        leadership=RedisLeadership(
            client, prefix=prefix, ttl_s=max(10.0, 3 * settings.adapter_sync_interval_s)
        ),
        _closers=[client.aclose, hub.close, caps.close],
    )
