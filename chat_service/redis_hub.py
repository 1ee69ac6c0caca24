"""Live events across workers and machines, over Redis pub/sub.

With `SUPPORTLOOP_REDIS_URL` set, every event a worker publishes is delivered to its own
subscribers at once (no round trip for the common case) and sent to one Redis channel; every
other worker's listener delivers it to the widgets and consoles connected there. The database
stays the source of truth: pub/sub may drop a message (a worker restarting, Redis away), and a
client that missed one resumes from its last sequence number as it does after any reconnect.

Order: one sender task per worker sends in publish order, one PUBLISH at a time, and Redis
keeps that order, so the events of a reply (owned by one worker) arrive in order everywhere.
Back-pressure: the outgoing queue is bounded; when Redis is slower than the chat, events for
other workers are dropped and counted, never buffered without bound, and local delivery is
unaffected.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as redis

from chat_service.frames import ServerEvent, event_from_payload
from chat_service.hub import ConversationHub

log = logging.getLogger(__name__)
CHANNEL = "supportloop:events"
OUTGOING_LIMIT = 10_000
RECONNECT_S = 1.0


def redact_url(url: str) -> str:
    """The URL for the logs, without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class RedisHub(ConversationHub):
    def __init__(self, client: redis.Redis, channel: str = CHANNEL) -> None:
        """``client`` is the worker's shared client (its pool); the listener holds one of its
        connections for the subscription."""
        super().__init__()
        self._client = client
        self._channel = channel
        self._origin = uuid.uuid4().hex  # our own messages come back: skip them
        self._outgoing: asyncio.Queue[str] = asyncio.Queue(maxsize=OUTGOING_LIMIT)
        self._tasks: list[asyncio.Task[None]] = []
        self._listening = asyncio.Event()
        self.dropped = 0  # events other workers never got (queue full); clients resume

    async def start(self) -> None:
        """Subscribe before returning, so nothing published after start is missed here."""
        self._tasks = [
            asyncio.create_task(self._listen(), name="redis-hub-listen"),
            asyncio.create_task(self._send(), name="redis-hub-send"),
        ]
        await asyncio.wait_for(self._listening.wait(), timeout=10)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def publish(
        self,
        tenant_id: int,
        conversation_id: int,
        event: ServerEvent,
        *,
        customer_visible: bool = True,
    ) -> None:
        super().publish(tenant_id, conversation_id, event, customer_visible=customer_visible)
        message = json.dumps(
            {
                "origin": self._origin,
                "tenant": tenant_id,
                "conversation": conversation_id,
                "visible": customer_visible,
                "event": event.payload(),
            }
        )
        try:
            self._outgoing.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped += 1

    def _deliver(self, data: dict[str, Any]) -> None:
        if data.get("origin") == self._origin:
            return
        event = event_from_payload(data["event"])
        super().publish(
            int(data["tenant"]),
            int(data["conversation"]),
            event,
            customer_visible=bool(data["visible"]),
        )

    async def _listen(self) -> None:
        while True:
            try:
                async with self._client.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    self._listening.set()
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        try:
                            self._deliver(json.loads(message["data"]))
                        except (ValueError, KeyError, TypeError) as exc:
                            log.warning("unreadable event on %s: %s", self._channel, exc)
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                log.warning("redis listener lost its connection (%s); reconnecting", exc)
                await asyncio.sleep(RECONNECT_S)

    async def _send(self) -> None:
        while True:
            message = await self._outgoing.get()
            try:
                await self._client.publish(self._channel, message)
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                self.dropped += 1
                log.warning("redis publish failed (%s); clients will resume", exc)
                await asyncio.sleep(RECONNECT_S)
