"""Nothing acknowledged goes unanswered (security goal 8): replies cancelled by a crash or a
shutdown are given after the restart, a shutdown lets replies under way finish, and a reply
task that dies is logged."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest
from sqlmodel import select

from chat_service.responder import Responder
from core.crud.conversations import append_message, start_conversation
from core.db import session_scope
from core.migrate import open_database
from core.models import Message, Role
from engines.embedded import EmbeddedEngine
from tests.chat_service.ws_client import open_chat, read_until, send_message
from tests.conftest import free_port, make_settings, running_server
from tests.factories import make_tenant

pytestmark = pytest.mark.anyio


def bot_replies(db, conversation_id: int | None = None) -> list[str]:  # noqa: ANN001
    with session_scope(db) as session:
        query = select(Message.text).where(Message.role == Role.BOT)
        if conversation_id is not None:
            query = query.where(Message.conversation_id == conversation_id)
        return list(session.exec(query).all())


async def test_a_message_acknowledged_before_a_crash_is_answered_after_the_restart(
    tmp_path: Path, engine: EmbeddedEngine
) -> None:
    """What a kill -9 between the ack and the reply leaves: the customer's message stored,
    no reply. The next start answers it without the customer doing anything."""
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    db = open_database(url)
    tenant, _ = make_tenant(db, "acme")
    assert tenant.id is not None
    with session_scope(db) as session:
        conversation, token = start_conversation(session=session, tenant_id=tenant.id)
        append_message(
            session=session,
            conversation=conversation,
            role=Role.CUSTOMER,
            text="Do you sell decaf?",
        )
        conversation_id = conversation.id
    assert conversation_id is not None
    db.dispose()

    with running_server(make_settings(tmp_path, url, port=free_port()), engine) as live:
        for _ in range(600):
            if bot_replies(live.app.state.services.db, conversation_id):
                break
            await asyncio.sleep(0.1)
        assert len(bot_replies(live.app.state.services.db, conversation_id)) == 1
        async with open_chat(live.ws_url, "acme", token=token) as ws:  # the customer comes back
            frames = await read_until(ws, lambda f: f["type"] == "message" and f["role"] == "bot")
        assert frames[-1]["text"]


@pytest.mark.slow
async def test_a_shutdown_lets_the_reply_under_way_finish(
    tmp_path: Path, engine: EmbeddedEngine
) -> None:
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'drain.db'}",
        port=free_port(),
        max_new_tokens=24,
        shutdown_drain_s=60,  # a busy CI machine streams slowly
    )
    with running_server(settings, engine) as live:
        db = live.app.state.services.db
        make_tenant(db, "acme")
        async with open_chat(live.ws_url, "acme") as ws:
            await send_message(ws, "c-1", "Hello, do you sell decaf?")
            await read_until(ws, lambda f: f["type"] == "reply_start")
        stopping = time.monotonic()
    # Leaving the block stopped the server (as SIGTERM does) while the reply streamed.
    assert len(bot_replies(db)) == 1
    assert time.monotonic() - stopping < settings.shutdown_drain_s + 5


async def test_a_reply_task_that_dies_is_logged(
    tmp_path: Path,
    engine: EmbeddedEngine,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("planning broke")

    monkeypatch.setattr(Responder, "plan_reply", broken)
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'dies.db'}", port=free_port())
    with caplog.at_level(logging.ERROR, logger="chat_service.responder"):
        with running_server(settings, engine) as live:
            make_tenant(live.app.state.services.db, "acme")
            async with open_chat(live.ws_url, "acme") as ws:
                await send_message(ws, "c-1", "Hello?")
                await read_until(ws, lambda f: f["type"] == "ack")
            for _ in range(100):
                if any("failed" in r.getMessage() for r in caplog.records):
                    break
                await asyncio.sleep(0.05)
    failures = [r for r in caplog.records if r.getMessage().startswith("reply task")]
    assert failures and "planning broke" in str(failures[0].exc_info[1])  # type: ignore[index]
