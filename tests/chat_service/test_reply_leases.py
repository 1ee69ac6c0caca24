"""One reply per customer message, however many workers: the conversation's lease in Redis
decides who answers, and the store step refuses a second reply even when leases fail.

The workers are real chat services (two uvicorn servers on one database and the machine's
Redis, the 135M model answering); the message is stored first and then both workers are told
to answer it at the same moment, as when the unanswered sweep of each finds it."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import redis.asyncio as redis
from sqlmodel import select

from chat_service.reply_leases import RedisReplyLeases
from chat_service.server import BackgroundServer
from core.crud.conversations import append_customer_message
from core.db import session_scope
from core.models import BotMode, Message, Role
from engines.embedded import EmbeddedEngine
from tests.conftest import REDIS_URL, free_port, make_settings, running_server
from tests.factories import make_conversation, make_tenant

pytestmark = pytest.mark.anyio


def leases(redis_client: redis.Redis, ttl_s: float = 30.0) -> RedisReplyLeases:
    return RedisReplyLeases(
        redis_client, prefix=f"supportloop-test:{uuid.uuid4().hex}", ttl_s=ttl_s, poll_s=0.05
    )


async def test_a_second_worker_waits_until_the_first_has_answered(
    redis_client: redis.Redis,
) -> None:
    shared = leases(redis_client)
    order: list[str] = []

    async def answer(worker: str, seconds: float) -> None:
        async with shared.hold(42):
            order.append(f"{worker} starts")
            await asyncio.sleep(seconds)
            order.append(f"{worker} ends")

    first = asyncio.create_task(answer("A", 0.3))
    await asyncio.sleep(0.05)
    await asyncio.gather(first, answer("B", 0))
    assert order == ["A starts", "A ends", "B starts", "B ends"]
    async with shared.hold(43):  # another conversation never waits for this one
        pass


async def test_the_lease_of_a_worker_that_died_expires(redis_client: redis.Redis) -> None:
    shared = leases(redis_client)
    # A worker that died mid-reply: its lease is never renewed nor released.
    await redis_client.set(shared._key(42), "dead-worker", px=500)
    started = asyncio.get_running_loop().time()
    async with shared.hold(42):
        waited = asyncio.get_running_loop().time() - started
    assert 0.3 < waited < 2.0


async def test_a_long_reply_keeps_its_lease_and_a_lost_lease_cancels_it(
    redis_client: redis.Redis,
) -> None:
    shared = leases(redis_client, ttl_s=1.5)
    async with shared.hold(42):
        await asyncio.sleep(2.0)  # past the first expiry: renewed meanwhile
        assert await redis_client.get(shared._key(42)) is not None

    async def stalled_reply() -> None:
        async with shared.hold(42):
            await redis_client.set(shared._key(42), "another-worker")  # it expired and was taken
            await asyncio.sleep(5)

    with pytest.raises(asyncio.CancelledError):
        await stalled_reply()
    assert await redis_client.get(shared._key(42)) == b"another-worker"  # not released by us


@pytest.fixture(params=["redis", "database only"])
def two_workers(
    request: pytest.FixtureRequest, tmp_path: Path, engine: EmbeddedEngine
) -> Iterator[tuple[BackgroundServer, BackgroundServer]]:
    """Two workers on one database; with Redis (leases), or without (the store check alone)."""
    shared = (
        {"redis_url": REDIS_URL, "redis_prefix": f"supportloop-test:{uuid.uuid4().hex}"}
        if request.param == "redis"
        else {}
    )
    with ExitStack() as stack:
        yield tuple(  # type: ignore[misc]
            stack.enter_context(
                running_server(
                    make_settings(
                        tmp_path,
                        f"sqlite:///{tmp_path / 'shared.db'}",
                        port=free_port(),
                        max_new_tokens=24,
                        **shared,
                    ),
                    engine,
                )
            )
            for _ in range(2)
        )


def test_two_workers_told_to_answer_the_same_message_store_one_reply(
    two_workers: tuple[BackgroundServer, BackgroundServer], caplog: pytest.LogCaptureFixture
) -> None:
    worker_a, worker_b = two_workers
    db = worker_a.app.state.services.db
    tenant, _ = make_tenant(db, "acme", bot_mode=BotMode.AUTO)
    conversation, _ = make_conversation(db, tenant)
    assert tenant.id is not None and conversation.id is not None
    with session_scope(db) as session:
        append_customer_message(
            session=session,
            tenant_id=tenant.id,
            conversation_id=conversation.id,
            text="Where is my order?",
            client_id="c-1",
        )

    async def answer(worker: BackgroundServer) -> None:
        responder = worker.app.state.services.responder
        responder.schedule(tenant_id=tenant.id, conversation_id=conversation.id)
        await responder.idle()

    with caplog.at_level(logging.INFO, logger="chat_service.responder"):
        both = [
            asyncio.run_coroutine_threadsafe(answer(worker), worker.loop)  # type: ignore[arg-type]
            for worker in (worker_a, worker_b)
        ]
        for done in both:
            done.result(timeout=120)
    with session_scope(db) as session:
        replies = session.exec(
            select(Message).where(
                Message.conversation_id == conversation.id, Message.role == Role.BOT
            )
        ).all()
    assert len(replies) == 1 and replies[0].text
    composed = caplog.text.count("replied (") + caplog.text.count("reply discarded")
    if worker_a.settings.redis_url:
        assert composed == 1  # the lease: the second worker never ran the model
    else:
        assert "another worker answered first" in caplog.text  # both ran it; one was kept
