"""In-process fan-out of conversation events to the WebSocket connections watching them.

Events are published only after the database commit that produced them, so a subscriber never
sees something that is not stored. A subscriber that falls too far behind is cut off rather
than buffered without bound; its client reconnects and resumes from its last sequence number.
(One process only: running several workers needs a shared bus, e.g. PostgreSQL LISTEN or Redis.)
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

Event = dict[str, Any]
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


class ConversationHub:
    def __init__(self) -> None:
        self._subscribers: dict[int, set[Subscription]] = defaultdict(set)

    @contextmanager
    def subscribe(self, conversation_id: int, subscription: Subscription) -> Iterator[Subscription]:
        self._subscribers[conversation_id].add(subscription)
        try:
            yield subscription
        finally:
            subscribers = self._subscribers.get(conversation_id)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._subscribers[conversation_id]

    def publish(self, conversation_id: int, event: Event) -> None:
        """Must be called on the event loop's thread."""
        for subscription in list(self._subscribers.get(conversation_id, ())):
            subscription.offer(event)

    def watchers(self, conversation_id: int) -> int:
        return len(self._subscribers.get(conversation_id, ()))
