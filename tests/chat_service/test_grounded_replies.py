"""Replies grounded in the tenant's help center, over the real WebSocket and the real model."""

from __future__ import annotations

from pathlib import Path

import pytest

from chat_service.server import BackgroundServer
from core.db import session_scope
from core.models import BotMode, Message, Suggestion, Tenant
from knowledge import REFUSAL
from tests.chat_service.test_suggestions import wait_for_drafts
from tests.chat_service.ws_client import is_bot_message, open_chat, read_until, send_message
from tests.factories import all_rows, make_tenant
from tests.knowledge.corpus import index_folder, write_articles

pytestmark = pytest.mark.anyio


def with_help_center(live: BackgroundServer, tmp_path: Path, **tenant: object) -> Tenant:
    db = live.app.state.services.db
    made, _ = make_tenant(db, "acme", **tenant)
    index_folder(db, made.id, write_articles(tmp_path / "help"))  # type: ignore[arg-type]
    return made


async def test_a_documented_question_is_answered_with_its_sources(
    live_server: BackgroundServer, tmp_path: Path
) -> None:
    with_help_center(live_server, tmp_path)
    async with open_chat(live_server.ws_url, "acme") as ws:
        await send_message(ws, "c-1", "How much is the delivery fee for a small order?")
        frames = await read_until(ws, is_bot_message)
    final = frames[-1]
    assert any(f["type"] == "delta" for f in frames)  # still streamed
    assert [s["doc_id"] for s in final["sources"]] == ["delivery"]
    assert final["sources"][0]["url"] == "https://help.example/delivery"
    assert "$3.49" in final["sources"][0]["excerpt"]
    assert final["offer_handoff"] is False
    [_, bot] = all_rows(live_server.app.state.services.db, Message)
    assert bot.grounding is not None and bot.grounding["retrieved"][0] == "delivery"
    assert bot.text == final["text"]


async def test_an_undocumented_question_gets_i_dont_know_and_a_person(
    live_server: BackgroundServer, tmp_path: Path
) -> None:
    with_help_center(live_server, tmp_path)
    async with open_chat(live_server.ws_url, "acme") as ws:
        await send_message(ws, "c-1", "Do you sell matcha lattes?")
        final = (await read_until(ws, is_bot_message))[-1]
    assert final["text"] == REFUSAL
    assert final["offer_handoff"] is True and final["sources"] == []
    [_, bot] = all_rows(live_server.app.state.services.db, Message)
    assert bot.grounding is not None and bot.grounding["refused"] is True


async def test_an_assist_mode_draft_carries_its_sources_for_the_agent(
    live_server: BackgroundServer, tmp_path: Path
) -> None:
    with_help_center(live_server, tmp_path, bot_mode=BotMode.ASSIST)
    async with open_chat(live_server.ws_url, "acme") as ws:
        await send_message(ws, "c-1", "How long do you keep a pickup order?")
        await wait_for_drafts(live_server, 1)
    [draft] = all_rows(live_server.app.state.services.db, Suggestion)
    assert draft.grounding is not None
    assert [s["doc_id"] for s in draft.grounding["sources"]] == ["pickup"]
    with session_scope(live_server.app.state.services.db) as session:
        assert session.get(Suggestion, draft.id) is not None
