"""Bounded model work (OWASP LLM10): capped concurrent replies with a fair, bounded queue, a
clear "busy, a person will follow up" when it is full, and a daily token budget per tenant."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from sqlmodel import select

from chat_service.reply_slots import RepliesBusyError, ReplySlots
from core.db import session_scope
from core.models import Conversation, ConversationStatus
from engines.embedded import EmbeddedEngine
from tests.chat_service.ws_client import open_chat, send_message
from tests.conftest import free_port, make_settings, running_server
from tests.factories import long_message, make_tenant

pytestmark = pytest.mark.anyio


async def test_a_freed_slot_goes_to_the_tenants_in_turn_and_a_full_queue_refuses() -> None:
    slots = ReplySlots(total=1, per_tenant=1, queue_per_tenant=2)
    order: list[str] = []
    release = asyncio.Event()

    async def reply(tenant: int, name: str) -> None:
        async with slots.slot(tenant):
            order.append(name)
            await release.wait()

    first = asyncio.create_task(reply(1, "a1"))
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(reply(1, n)) for n in ("a2", "a3")]
    await asyncio.sleep(0)
    with pytest.raises(RepliesBusyError):
        async with slots.slot(1):
            pass
    late = asyncio.create_task(reply(2, "b1"))  # another tenant, queued after a's two
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, *waiting, late)
    assert order == ["a1", "a2", "b1", "a3"]  # b's turn comes before a's second waiter
    assert slots.in_use == 0 and slots.queued(1) == 0


async def test_a_cancelled_waiter_gives_its_place_back() -> None:
    slots = ReplySlots(total=1, per_tenant=1, queue_per_tenant=1)
    async with slots.slot(1):
        waiter = asyncio.create_task(slots.slot(1).__aenter__())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert slots.queued(1) == 0
    async with slots.slot(1):
        assert slots.in_use == 1


async def frames_of(ws, log: list[tuple[float, dict]], stop: asyncio.Event) -> None:  # noqa: ANN001
    while not stop.is_set():
        try:
            raw = await asyncio.wait_for(ws.recv(), 0.2)
        except TimeoutError:
            continue
        log.append((time.monotonic(), json.loads(raw)))


@pytest.mark.slow
async def test_a_flood_from_one_tenant_neither_stalls_nor_delays_another_tenant(
    tmp_path: Path, engine: EmbeddedEngine
) -> None:
    """20 visitors of tenant A send 4,000-character messages at once: one reply of A runs,
    five wait, fourteen get "busy" and a person; a customer of tenant B meanwhile is answered
    at once, ahead of A's queue (at most the one A reply that was already handed a slot starts
    before B's first token)."""
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'flood.db'}",
        port=free_port(),
        max_concurrent_replies=2,
        max_concurrent_replies_per_tenant=1,
        reply_queue_per_tenant=5,
        max_new_tokens=8,
    )
    with running_server(settings, engine) as live:
        db = live.app.state.services.db
        make_tenant(db, "acme")
        make_tenant(db, "globex")
        stop = asyncio.Event()
        logs: list[list[tuple[float, dict]]] = [[] for _ in range(20)]
        sockets = [open_chat(live.ws_url, "acme") for _ in range(20)]
        opened = [await s.__aenter__() for s in sockets]
        readers = [
            asyncio.create_task(frames_of(ws, log, stop))
            for ws, log in zip(opened, logs, strict=True)
        ]
        try:
            await asyncio.gather(
                *(
                    send_message(ws, uuid.uuid4().hex, long_message(n, 4000))
                    for n, ws in enumerate(opened)
                )
            )

            def busy() -> int:
                return sum(
                    any(f["type"] == "error" and f["code"] == "busy" for _, f in log)
                    for log in logs
                )

            for _ in range(600):
                if busy() >= 14:
                    break
                await asyncio.sleep(0.1)
            assert busy() == 14

            async with open_chat(live.ws_url, "globex") as b:
                sent = time.monotonic()
                await send_message(b, "b-1", "Hello, do you sell decaf?")
                while True:
                    frame = json.loads(await asyncio.wait_for(b.recv(), 120))
                    if frame["type"] in ("delta", "error"):
                        break
                first_token = time.monotonic()
            assert frame["type"] == "delta"
            a_started_meanwhile = sum(
                sent < at < first_token
                for log in logs
                for at, f in log
                if f["type"] == "reply_start"
            )
            assert a_started_meanwhile <= 1
        finally:
            stop.set()
            await asyncio.gather(*readers)
            for s in sockets:
                await s.__aexit__(None, None, None)
        with session_scope(db) as session:
            escalated = session.exec(
                select(Conversation).where(Conversation.status == ConversationStatus.ESCALATED)
            ).all()
        assert len(escalated) == 14  # each refused customer was handed to a person


async def test_a_tenant_past_its_daily_budget_gets_a_person_not_the_model(
    tmp_path: Path, engine: EmbeddedEngine
) -> None:
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'budget.db'}", port=free_port(), tenant_daily_tokens=5
    )
    with running_server(settings, engine) as live:
        tenant, _ = make_tenant(live.app.state.services.db, "acme")
        outcomes = []
        for n in range(2):
            async with open_chat(live.ws_url, "acme") as ws:
                await send_message(ws, f"c-{n}", "Hi, do you sell decaf?")
                while True:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 60))
                    if frame["type"] == "error" or (
                        frame["type"] == "message" and frame["role"] == "bot"
                    ):
                        outcomes.append(frame.get("code", "answered"))
                        break
        spent = REGISTRY.get_sample_value(
            "supportloop_tenant_tokens_today", {"tenant_id": str(tenant.id)}
        )
    assert outcomes == ["answered", "busy"]  # the first reply spent more than 5 tokens
    assert spent is not None and spent >= 5  # and /metrics shows it
