"""Caps on open widget connections per client address and per tenant: an idle socket costs
memory and a file descriptor, and opening thousands is cheaper for an attacker than for us.

Counted in this process here; with Redis configured, across every worker
(redis_limits.RedisConnectionCaps).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from core.errors import ConflictError


class TooManyConnectionsError(ConflictError):
    pass


def refusal(per_ip: int, *, by_address: bool) -> str:
    if by_address:
        return f"{per_ip} chats already open from this address"
    return "this shop's chat is full just now; try again soon"


class Caps(Protocol):
    def hold(self, ip: str, tenant_id: int) -> AbstractAsyncContextManager[None]:
        """Counts the connection while it is open; TooManyConnectionsError when full."""


class ConnectionCaps:
    def __init__(self, *, per_ip: int, per_tenant: int) -> None:
        self.per_ip = per_ip
        self.per_tenant = per_tenant
        self._ips: Counter[str] = Counter()
        self._tenants: Counter[int] = Counter()

    @asynccontextmanager
    async def hold(self, ip: str, tenant_id: int) -> AsyncIterator[None]:
        if self._ips[ip] >= self.per_ip:
            raise TooManyConnectionsError(refusal(self.per_ip, by_address=True))
        if self._tenants[tenant_id] >= self.per_tenant:
            raise TooManyConnectionsError(refusal(self.per_ip, by_address=False))
        self._ips[ip] += 1
        self._tenants[tenant_id] += 1
        try:
            yield
        finally:
            self._ips[ip] -= 1
            self._tenants[tenant_id] -= 1
            if not self._ips[ip]:
                del self._ips[ip]
            if not self._tenants[tenant_id]:
                del self._tenants[tenant_id]
