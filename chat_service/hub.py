"""In-process fan-out of conversation events to the WebSocket connections watching them:
widgets watch one conversation (customer-visible events only), agent consoles watch every
conversation of their tenant (everything, internal notes and suggestions included).

Events are published only after the database commit that produced them, so a subscriber never
sees something that is not stored. A subscriber that falls too far behind is cut off rather
than buffered without bound; its client reconnects and resumes from its last sequence number.
This hub is the one-process default; `chat_service.redis_hub.RedisHub` extends it to several
workers and machines over Redis pub/sub (`SUPPORTLOOP_REDIS_URL`).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TypeVar

from chat_service.frames import ServerEvent

Event = ServerEvent
K = TypeVar("K")
SUBSCRIBER_QUEUE_LIMIT = 1000


class Subscription:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=SUBSCRIBER_QUEUE_LIMIT)
        self.overflowed = asyncio.Event()

    def offer(self, event: Event) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed.set()


@contextmanager
def _member(
    groups: dict[K, set[Subscription]], key: K, sub: Subscription
) -> Iterator[Subscription]:
    groups[key].add(sub)
    try:
        yield sub
    finally:
        members = groups.get(key)
        if members is not None:
            members.discard(sub)
            if not members:
                del groups[key]


class ConversationHub:
    def __init__(self) -> None:
        # Widgets by (tenant, conversation): an event published under the wrong tenant reaches
        # nobody rather than another tenant's customer.
        self._subscribers: dict[tuple[int, int], set[Subscription]] = defaultdict(set)
        self._tenant_subscribers: dict[int, set[Subscription]] = defaultdict(set)

    def subscribe(
        self, tenant_id: int, conversation_id: int, subscription: Subscription
    ) -> AbstractContextManager[Subscription]:
        """A customer's widget: the customer-visible events of one conversation."""
        return _member(self._subscribers, (tenant_id, conversation_id), subscription)

    def subscribe_tenant(
        self, tenant_id: int, subscription: Subscription
    ) -> AbstractContextManager[Subscription]:
        """An agent console: every event of every conversation of the tenant."""
        return _member(self._tenant_subscribers, tenant_id, subscription)

    def publish(
        self, tenant_id: int, conversation_id: int, event: Event, *, customer_visible: bool = True
    ) -> None:
        """Must be called on the event loop's thread."""
        if customer_visible:
            for subscription in list(self._subscribers.get((tenant_id, conversation_id), ())):
                subscription.offer(event)
        tagged = event.for_console(conversation_id)
        for subscription in list(self._tenant_subscribers.get(tenant_id, ())):
            subscription.offer(tagged)
