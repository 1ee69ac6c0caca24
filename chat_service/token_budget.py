"""A daily cap on the tokens the model generates for one tenant (OWASP LLM10): a bot that
anyone on the internet can talk to must not run up unbounded compute for the business.

Counted per UTC day, in this process, or across every worker with Redis configured
(redis_limits.RedisTokenBudget). When a tenant's budget is spent its customers get the "busy, a person will
follow up" outcome instead of a model reply, until midnight UTC. /metrics shows the day's use
per tenant id.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Protocol

from prometheus_client import Gauge

TOKENS_TODAY = Gauge(
    "supportloop_tenant_tokens_today",
    "Tokens the model generated today (UTC) for a tenant, against its daily budget.",
    ["tenant_id"],
)
BUDGET = Gauge(
    "supportloop_tenant_daily_token_budget",
    "The daily token budget per tenant (0: unlimited).",
)


class Budget(Protocol):
    daily_tokens: int

    async def exhausted(self, tenant_id: int) -> bool: ...

    async def spend(self, tenant_id: int, tokens: int) -> None: ...


class TokenBudget:
    def __init__(self, daily_tokens: int) -> None:
        self.daily_tokens = daily_tokens
        self._day: date | None = None
        self._used: dict[int, int] = {}
        BUDGET.set(daily_tokens)

    def _today(self) -> dict[int, int]:
        today = datetime.now(UTC).date()
        if today != self._day:
            self._day = today
            for tenant_id in self._used:
                TOKENS_TODAY.labels(str(tenant_id)).set(0)
            self._used = {}
        return self._used

    async def exhausted(self, tenant_id: int) -> bool:
        return self.daily_tokens > 0 and self._today().get(tenant_id, 0) >= self.daily_tokens

    async def spend(self, tenant_id: int, tokens: int) -> None:
        used = self._today()
        used[tenant_id] = used.get(tenant_id, 0) + tokens
        TOKENS_TODAY.labels(str(tenant_id)).set(used[tenant_id])
