"""Which worker answers a conversation: one reply per customer message, however many workers.

In one process the responder's task per conversation already serialises replies, so the local
lease grants at once. With Redis (`SUPPORTLOOP_REDIS_URL`) a worker takes the conversation's
lease (`SET key token NX PX ttl`) before it plans a reply and renews it while it generates; a
worker that finds the lease taken waits for it, then plans again from the database, which says
whether the bot still owes an answer (the holder may have answered this message too). A worker
that dies mid-reply stops renewing: its lease expires after ``ttl_s`` and the unanswered sweep
of any other worker answers the message (its partial reply was never stored).

A lease that is lost while held (the holder stalled past the expiry) cancels the reply; the
store step checks again in the database, so even then no message is answered twice.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

import redis.asyncio as redis

log = logging.getLogger(__name__)

# Delete or extend the key only while it still holds our token (another worker may own it now).
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
)


class ReplyLeases(Protocol):
    def hold(self, conversation_id: int) -> AbstractAsyncContextManager[None]:
        """Held for one reply; waits while another worker holds it."""


class LocalReplyLeases:
    """One process: the responder's per-conversation task is the lease."""

    @asynccontextmanager
    async def hold(self, conversation_id: int) -> AsyncIterator[None]:
        yield


class RedisReplyLeases:
    def __init__(
        self, client: redis.Redis, *, prefix: str, ttl_s: float = 30.0, poll_s: float = 0.2
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._ttl_ms = int(ttl_s * 1000)
        self._poll_s = poll_s

    def _key(self, conversation_id: int) -> str:
        return f"{self._prefix}:reply-lease:{conversation_id}"

    @asynccontextmanager
    async def hold(self, conversation_id: int) -> AsyncIterator[None]:
        key, token = self._key(conversation_id), uuid.uuid4().hex
        while not await self._client.set(key, token, nx=True, px=self._ttl_ms):
            await asyncio.sleep(self._poll_s)
        holder = asyncio.current_task()
        assert holder is not None
        renewer = asyncio.create_task(self._renew(key, token, holder, conversation_id))
        try:
            yield
        finally:
            renewer.cancel()
            await asyncio.gather(renewer, return_exceptions=True)
            try:
                await self._client.eval(_RELEASE, 1, key, token)
            except (redis.RedisError, OSError) as exc:  # it expires on its own
                log.warning("conversation=%s reply lease not released: %s", conversation_id, exc)

    async def _renew(
        self, key: str, token: str, holder: asyncio.Task[object], conversation_id: int
    ) -> None:
        while True:
            await asyncio.sleep(self._ttl_ms / 3000)
            try:
                renewed = await self._client.eval(_RENEW, 1, key, token, self._ttl_ms)
            except (redis.RedisError, OSError) as exc:
                log.warning("conversation=%s reply lease not renewed: %s", conversation_id, exc)
                continue  # still ours until it expires; the next try may reach Redis
            if not renewed:
                log.error("conversation=%s reply lease lost; reply cancelled", conversation_id)
                holder.cancel()
                return
