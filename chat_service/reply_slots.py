"""How many replies the model works on at once, and who goes next (OWASP LLM10: unbounded
consumption).

A reply holds a slot while it streams. There are ``total`` slots, and one tenant holds at most
``per_tenant`` of them, so a flood from one tenant's visitors cannot occupy the engine. Replies
that find no slot wait in their tenant's queue; a freed slot goes to the tenants in turn (round
robin over those with someone waiting and room under their cap), so a quiet tenant's customer
waits for at most one reply of each busy tenant, not for their whole queue. A queue is bounded
(``queue_per_tenant``): a reply that finds its tenant's queue full is refused at once with
`RepliesBusyError`, and the responder turns that into a clear "busy, a person will follow up"
(an error frame and the handoff), never a silent stall.

In-process: with several workers each has its own slots (issue: shared limits on Redis).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from core.errors import ConflictError


class RepliesBusyError(ConflictError):
    """No slot and no room to wait: the reply is not attempted."""


class ReplySlots:
    def __init__(self, *, total: int, per_tenant: int, queue_per_tenant: int) -> None:
        self.total = total
        self.per_tenant = per_tenant
        self.queue_per_tenant = queue_per_tenant
        self._running: dict[int, int] = {}
        self._waiting: dict[int, deque[asyncio.Future[None]]] = {}
        self._turn: deque[int] = deque()  # tenants with waiters, in the order they get slots

    @property
    def in_use(self) -> int:
        return sum(self._running.values())

    def queued(self, tenant_id: int) -> int:
        return len(self._waiting.get(tenant_id, ()))

    def _has_room(self, tenant_id: int) -> bool:
        return self.in_use < self.total and self._running.get(tenant_id, 0) < self.per_tenant

    @asynccontextmanager
    async def slot(self, tenant_id: int) -> AsyncIterator[None]:
        await self._acquire(tenant_id)
        try:
            yield
        finally:
            self._release(tenant_id)

    async def _acquire(self, tenant_id: int) -> None:
        if self._has_room(tenant_id) and not self._waiting.get(tenant_id):
            self._running[tenant_id] = self._running.get(tenant_id, 0) + 1
            return
        queue = self._waiting.setdefault(tenant_id, deque())
        if len(queue) >= self.queue_per_tenant:
            raise RepliesBusyError(
                f"{self.queue_per_tenant} replies already waiting for this tenant"
            )
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(granted)
        if tenant_id not in self._turn:
            self._turn.append(tenant_id)
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self._release(tenant_id)  # granted just as we were cancelled: give it back
            else:
                queue.remove(granted)
                self._forget_if_idle(tenant_id)
            raise

    def _release(self, tenant_id: int) -> None:
        self._running[tenant_id] -= 1
        if not self._running[tenant_id]:
            del self._running[tenant_id]
        self._hand_out()

    def _hand_out(self) -> None:
        """Free slots go to waiting tenants in turn: a tenant served goes to the back."""
        progressed = True
        while progressed and self.in_use < self.total:
            progressed = False
            for tenant_id in list(self._turn):
                if self.in_use >= self.total:
                    return
                queue = self._waiting.get(tenant_id)
                if not queue or not self._has_room(tenant_id):
                    continue
                granted = queue.popleft()
                self._running[tenant_id] = self._running.get(tenant_id, 0) + 1
                granted.set_result(None)
                self._turn.remove(tenant_id)
                self._turn.append(tenant_id)
                self._forget_if_idle(tenant_id)
                progressed = True

    def _forget_if_idle(self, tenant_id: int) -> None:
        if not self._waiting.get(tenant_id):
            self._waiting.pop(tenant_id, None)
            if tenant_id in self._turn:
                self._turn.remove(tenant_id)
