"""The live-event hub, in memory and over Redis: one suite over both implementations, then what
only several workers have (an event published on one reaches subscribers on another, once).

Redis is the machine's (127.0.0.1:6379, as in CI); each test gets its own channel, so parallel
test workers never hear each other.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis

from chat_service.frames import DeltaEvent, MessageEvent, ServerEvent, TypingEvent
from chat_service.hub import ConversationHub, Subscription
from chat_service.redis_hub import RedisHub, redact_url
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", "redis"])
async def hub(
    request: pytest.FixtureRequest, redis_client: redis.Redis, redis_prefix: str
) -> AsyncIterator[ConversationHub]:
    if request.param == "memory":
        yield ConversationHub()
        return
    redis_hub = RedisHub(redis_client, channel=redis_prefix)
    await redis_hub.start()
    try:
        yield redis_hub
    finally:
        await redis_hub.close()


def typing(author: str = "Sam") -> ServerEvent:
    return TypingEvent(role="agent", author=author)


async def next_event(sub: Subscription, timeout: float = 2.0) -> ServerEvent:
    return await asyncio.wait_for(sub.queue.get(), timeout)


async def test_a_widget_gets_its_conversations_visible_events_only(hub: ConversationHub) -> None:
    widget, other = Subscription(), Subscription()
    with hub.subscribe(1, 10, widget), hub.subscribe(1, 11, other):
        hub.publish(1, 10, typing())
        hub.publish(1, 10, typing("Lee"), customer_visible=False)
        assert await next_event(widget) == typing()
        await asyncio.sleep(0.1)
        assert widget.queue.empty() and other.queue.empty()


async def test_a_console_gets_every_event_of_its_tenant_and_no_other(
    hub: ConversationHub,
) -> None:
    console, foreign = Subscription(), Subscription()
    with hub.subscribe_tenant(1, console), hub.subscribe_tenant(2, foreign):
        hub.publish(1, 10, typing(), customer_visible=False)
        event = await next_event(console)
        assert event.conversation_id == 10 and event.type == "typing"
        await asyncio.sleep(0.1)
        assert foreign.queue.empty()


async def test_a_subscriber_that_falls_behind_is_cut_off_not_buffered(
    hub: ConversationHub,
) -> None:
    slow = Subscription()
    with hub.subscribe(1, 10, slow):
        for n in range(slow.queue.maxsize + 1):
            hub.publish(1, 10, DeltaEvent(reply_id="r", text=str(n)))
        assert slow.overflowed.is_set() and slow.queue.full()


async def test_an_event_on_one_worker_reaches_another_once_and_in_order(redis_prefix: str) -> None:
    client_a, client_b = redis.from_url(REDIS_URL), redis.from_url(REDIS_URL)  # two processes'
    worker_a = RedisHub(client_a, channel=redis_prefix)
    worker_b = RedisHub(client_b, channel=redis_prefix)
    await worker_a.start()
    await worker_b.start()
    try:
        on_a, on_b, console_b = Subscription(), Subscription(), Subscription()
        with (
            worker_a.subscribe(1, 10, on_a),
            worker_b.subscribe(1, 10, on_b),
            worker_b.subscribe_tenant(1, console_b),
        ):
            deltas = [DeltaEvent(reply_id="r", text=f"piece {n}") for n in range(50)]
            for delta in deltas:
                worker_a.publish(1, 10, delta)
            message = MessageEvent.model_validate(
                {
                    "id": 7,
                    "seq": 3,
                    "role": "bot",
                    "text": "Done",
                    "author": None,
                    "internal_note": False,
                    "created_at": "2026-12-03T10:00:00Z",
                    "sources": [{"doc_id": "d", "title": "Refunds", "excerpt": "Within 30 days"}],
                    "offer_handoff": False,
                    "reply_id": "r",
                }
            )
            worker_a.publish(1, 10, message)
            assert [await next_event(on_b) for _ in deltas] == deltas
            assert await next_event(on_b) == message
            consoled = [await next_event(console_b) for _ in range(51)]
            assert all(e.conversation_id == 10 for e in consoled)
            assert consoled[-1].payload() == {**message.payload(), "conversation_id": 10}
            assert [await next_event(on_a) for _ in range(51)] == [*deltas, message]
            await asyncio.sleep(0.2)
            assert on_a.queue.empty() and on_b.queue.empty()  # each delivered once
    finally:
        for worker, client in ((worker_a, client_a), (worker_b, client_b)):
            await worker.close()
            await client.aclose()


def test_the_redis_password_never_reaches_the_logs() -> None:
    assert redact_url("redis://:s3cret@cache:6379/0") == "redis://:***@cache:6379/0"
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
