"""Caps on open widget connections per client address and per tenant: an idle socket costs
memory and a file descriptor, and opening thousands is cheaper for an attacker than for us.

In-process counts (several workers each cap their own until the counts move to Redis).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from core.errors import ConflictError


class TooManyConnectionsError(ConflictError):
    pass


class ConnectionCaps:
    def __init__(self, *, per_ip: int, per_tenant: int) -> None:
        self.per_ip = per_ip
        self.per_tenant = per_tenant
        self._ips: Counter[str] = Counter()
        self._tenants: Counter[int] = Counter()

    @contextmanager
    def hold(self, ip: str, tenant_id: int) -> Iterator[None]:
        if self._ips[ip] >= self.per_ip:
            raise TooManyConnectionsError(f"{self.per_ip} chats already open from this address")
        if self._tenants[tenant_id] >= self.per_tenant:
            raise TooManyConnectionsError("this shop's chat is full just now; try again soon")
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
