"""Assist mode: the bot drafts, agents decide, and every decision is stored for training."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import col

from chat_service.server import BackgroundServer
from core.crud.agents import create_agent
from core.db import session_scope
from core.models import BotMode, Message, Role, Suggestion, SuggestionStatus
from engines.embedded import EmbeddedEngine
from tests.chat_service.test_console_security import PASSWORD, Console
from tests.chat_service.ws_client import no_frame_within, open_chat, read_until, send_message
from tests.conftest import free_port, make_settings, running_server
from tests.factories import all_rows, make_tenant

pytestmark = pytest.mark.anyio


@pytest.fixture
def live(tmp_path: Path, engine: EmbeddedEngine) -> Iterator[BackgroundServer]:
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'assist.db'}", port=free_port())
    with running_server(settings, engine) as server:
        db = server.app.state.services.db
        tenant, _ = make_tenant(db, "acme", bot_mode=BotMode.ASSIST)
        with session_scope(db) as session:
            assert tenant.id is not None
            create_agent(
                session=session,
                tenant_id=tenant.id,
                email="sam@acme.test",
                password=PASSWORD,
                display_name="Sam",
            )
        yield server


def suggestions(live: BackgroundServer) -> list[Suggestion]:
    return all_rows(live.app.state.services.db, Suggestion, col(Suggestion.id))


async def wait_for_drafts(live: BackgroundServer, count: int) -> None:
    for _ in range(600):  # the real model drafts them; a minute at most
        if len(suggestions(live)) >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"fewer than {count} drafts")


async def test_an_agents_own_reply_settles_the_pending_drafts(live: BackgroundServer) -> None:
    async with open_chat(live.ws_url, "acme") as ws:
        await send_message(ws, "c-1", "Do you have oat milk?")
        await wait_for_drafts(live, 1)
        await send_message(ws, "c-2", "And almond milk?")
        frames = await read_until(ws, lambda f: f["type"] == "ack" and f["client_id"] == "c-2")
        await wait_for_drafts(live, 2)
        # The customer never sees a draft being composed.
        assert not any(f["type"] in ("reply_start", "delta") for f in frames)
        assert await no_frame_within(ws, 0.3)

        console = Console(live, "acme")
        conversation_id = frames[0]["conversation_id"]
        sent = console.post(
            f"/console/api/conversations/{conversation_id}/messages",
            json={"text": "Both, yes! Oat is the most popular."},
        )
        assert sent.status_code == 201
        agent = (await read_until(ws, lambda f: f["type"] == "message"))[-1]
        assert agent["role"] == Role.AGENT and agent["author"] == "Sam"

    older, newest = suggestions(live)
    assert (older.status, older.reason) == (
        SuggestionStatus.REJECTED,
        "superseded by a later reply",
    )
    assert newest.status == SuggestionStatus.EDITED
    assert newest.final_text == "Both, yes! Oat is the most popular."
    assert newest.sent_message_id == sent.json()["id"]
    with session_scope(live.app.state.services.db) as session:
        question = session.get(Message, newest.reply_to_message_id)
        assert question is not None and question.text == "And almond milk?"


async def test_deciding_twice_or_rejecting_without_a_reason_is_refused(
    live: BackgroundServer,
) -> None:
    async with open_chat(live.ws_url, "acme") as ws:
        await send_message(ws, "c-1", "Do you deliver?")
        await read_until(ws, lambda f: f["type"] == "ack")
        await wait_for_drafts(live, 1)
    [draft] = suggestions(live)
    console = Console(live, "acme")
    path = f"/console/api/suggestions/{draft.id}"
    no_reason = console.post(path, json={"decision": "reject"})
    assert no_reason.status_code == 409 and "say why" in no_reason.json()["detail"]
    assert console.post(path, json={"decision": "accept"}).status_code == 200
    again = console.post(path, json={"decision": "accept"})
    assert again.status_code == 409 and "already accepted" in again.json()["detail"]
    [accepted] = suggestions(live)
    assert accepted.status == SuggestionStatus.ACCEPTED and accepted.final_text == draft.draft_text
