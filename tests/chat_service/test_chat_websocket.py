"""The widget WebSocket, against a live uvicorn server and the real model."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from sqlmodel import select
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from core.db import create_db_engine, session_scope
from core.migrate import upgrade_database
from core.models import AdapterStatus, AdapterVersion, BotMode, Message, Role, Tenant
from engines.embedded import EmbeddedEngine
from tests.chat_service.ws_client import (
    answer_to_three_long_messages,
    is_bot_message,
    no_frame_within,
    open_chat,
    read_until,
    send_message,
)
from tests.conftest import ADMIN_TOKEN, LiveServer, free_port, make_settings, running_server
from tests.factories import make_tenant

pytestmark = pytest.mark.anyio


def stored_messages(live: LiveServer, conversation_id: int) -> list[Message]:
    with session_scope(live.app.state.services.db) as session:
        return list(
            session.exec(
                select(Message)
                .where(Message.conversation_id == conversation_id)
                .order_by(Message.seq)
            )
        )


async def test_message_is_acked_then_reply_streams_then_arrives_stored(
    live_server: LiveServer,
) -> None:
    make_tenant(live_server.app.state.services.db, "acme")
    async with open_chat(live_server.ws_url, "acme") as ws:
        await send_message(ws, "c-1", "Hi! Do you have oat milk?")
        frames = await read_until(ws, is_bot_message)

    kinds = [f["type"] for f in frames]
    assert kinds[:3] == ["session", "ack", "reply_start"]
    assert kinds[-1] == "message"
    assert set(kinds[3:-1]) == {"delta"} and len(kinds[3:-1]) >= 2
    ack, final = frames[1], frames[-1]
    assert ack == {**ack, "client_id": "c-1", "seq": 1, "duplicate": False}
    assert final["seq"] == 2
    assert final["text"] == "".join(f["text"] for f in frames[3:-1]).strip()

    stored = stored_messages(live_server, frames[0]["conversation_id"])
    assert [(m.seq, m.role) for m in stored] == [(1, Role.CUSTOMER), (2, Role.BOT)]
    assert stored[1].text == final["text"]


@pytest.mark.slow  # three 3,900-character prompts through the model: `make test` only
async def test_three_long_messages_are_still_answered(live_server: LiveServer) -> None:
    """Over 2,000 tokens of customer text: the oldest is dropped from the prompt, the bot
    answers (tests/test_prompt_format.py checks what the prompt holds)."""
    make_tenant(live_server.app.state.services.db, "acme")
    frames = await answer_to_three_long_messages(live_server.ws_url)

    assert [f for f in frames if f["type"] == "error"] == []
    assert frames[-1]["role"] == "bot" and frames[-1]["text"]


async def test_reconnect_returns_exactly_the_missed_messages(live_server: LiveServer) -> None:
    make_tenant(live_server.app.state.services.db, "acme")
    async with open_chat(live_server.ws_url, "acme") as ws:
        await send_message(ws, "c-1", "Where is my order?")
        frames = await read_until(ws, lambda f: f["type"] == "delta")  # drop mid-reply
    session, ack = frames[0], frames[1]
    live_server.run(live_server.app.state.services.responder.idle())

    async with open_chat(live_server.ws_url, "acme", session["token"], ack["seq"]) as ws:
        resumed = await read_until(ws, is_bot_message)
        assert [f["type"] for f in resumed] == ["session", "status", "message"]
        assert resumed[1]["status"] == "open" and resumed[2]["seq"] == 2
        assert await no_frame_within(ws, 0.5)  # nothing else, nothing twice

        await send_message(ws, "c-2", "Thanks, and can I add a muffin?")
        more = await read_until(ws, is_bot_message)
    seqs = [f["seq"] for f in more if f["type"] in ("ack", "message")]
    assert seqs == [3, 4]

    # A client that saw nothing gets the whole conversation, in order, once.
    async with open_chat(live_server.ws_url, "acme", session["token"], 0) as ws:
        everything = await read_until(ws, lambda f: f.get("seq") == 4)
    assert [f["seq"] for f in everything if f["type"] == "message"] == [1, 2, 3, 4]


@pytest.mark.slow
async def test_two_conversations_stream_at_the_same_time(
    tmp_path: Path, engine: EmbeddedEngine
) -> None:
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'two.db'}", port=free_port(), max_new_tokens=40
    )
    with running_server(settings, engine) as live:
        make_tenant(live.app.state.services.db, "acme")
        events: list[tuple[str, str]] = []
        async with open_chat(live.ws_url, "acme") as a, open_chat(live.ws_url, "acme") as b:

            async def chat(name: str, ws: ClientConnection, text: str) -> None:
                await send_message(ws, f"{name}-1", text)

                def record(frame: dict[str, object]) -> bool:
                    events.append((name, str(frame["type"])))
                    return is_bot_message(frame)

                await read_until(ws, record)

            await asyncio.gather(
                chat("a", a, "What are your opening hours?"), chat("b", b, "Do you deliver?")
            )
    first_final = events.index(next(e for e in events if e[1] == "message"))
    assert {name for name, kind in events[:first_final] if kind == "delta"} == {"a", "b"}


async def test_malformed_frames_get_error_frames_and_the_connection_stays_usable(
    live_server: LiveServer,
) -> None:
    make_tenant(live_server.app.state.services.db, "acme", bot_mode=BotMode.OFF)
    async with open_chat(live_server.ws_url, "acme") as ws:
        await ws.send("{not json")
        assert json.loads(await ws.recv())["code"] == "bad_json"
        await ws.send(json.dumps({"type": "message", "text": "no client id"}))
        error = json.loads(await ws.recv())
        assert error["code"] == "bad_frame" and "client_id" in error["detail"]
        await ws.send(json.dumps({"type": "shout"}))
        assert json.loads(await ws.recv())["code"] == "bad_frame"
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await ws.recv()) == {"type": "pong"}
        await send_message(ws, "c-1", "still here")
        frames = await read_until(ws, lambda f: f["type"] == "ack")
        assert frames[-1]["seq"] == 1


async def test_unknown_tenant_is_closed_with_1008(live_server: LiveServer) -> None:
    async with open_chat(live_server.ws_url, "nobody") as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_unknown_conversation_token_is_closed_with_1008(live_server: LiveServer) -> None:
    make_tenant(live_server.app.state.services.db, "acme")
    async with open_chat(live_server.ws_url, "acme", token="slc_forged", last_seq=3) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd.code == 1008


async def test_disallowed_origin_is_closed_with_1008(live_server: LiveServer) -> None:
    make_tenant(live_server.app.state.services.db, "acme", allowed_origins=["https://shop.example"])
    async with open_chat(live_server.ws_url, "acme", origin="https://evil.example") as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd.code == 1008
    async with open_chat(live_server.ws_url, "acme", origin="https://shop.example") as ws:
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await ws.recv()) == {"type": "pong"}


async def test_frame_over_64_kib_is_closed_with_1009(live_server: LiveServer) -> None:
    make_tenant(live_server.app.state.services.db, "acme")
    async with open_chat(live_server.ws_url, "acme") as ws:
        await send_message(ws, "c-big", "x" * (64 * 1024 + 1))
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd.code == 1009


async def test_the_same_client_id_twice_is_stored_once(live_server: LiveServer) -> None:
    make_tenant(live_server.app.state.services.db, "acme", bot_mode=BotMode.OFF)
    async with open_chat(live_server.ws_url, "acme") as ws:
        await send_message(ws, "c-1", "Hello")
        first = await read_until(ws, lambda f: f["type"] == "ack")
        await send_message(ws, "c-1", "Hello")
        again = await read_until(ws, lambda f: f["type"] == "ack")
    assert (first[-1]["seq"], first[-1]["duplicate"]) == (1, False)
    assert (again[-1]["seq"], again[-1]["duplicate"]) == (1, True)
    assert len(stored_messages(live_server, first[0]["conversation_id"])) == 1


async def test_switching_the_bot_on_through_the_api_takes_effect_at_the_next_message(
    live_server: LiveServer,
) -> None:
    # While the bot is off the responder skips planning for the tenant; the switch must not
    # wait for that to expire.
    make_tenant(live_server.app.state.services.db, "acme", bot_mode=BotMode.OFF)
    async with open_chat(live_server.ws_url, "acme") as ws:
        await send_message(ws, "c-1", "Hello?")
        await read_until(ws, lambda f: f["type"] == "ack")
        assert await no_frame_within(ws, 1.0)  # off: no reply
        async with httpx.AsyncClient(base_url=live_server.http_url) as http:
            switched = await http.patch(
                "/v1/tenants/acme",
                json={"bot_mode": "auto"},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
        assert switched.status_code == 200
        await send_message(ws, "c-2", "Do you have oat milk?")
        frames = await asyncio.wait_for(read_until(ws, is_bot_message), 60)
    assert frames[-1]["role"] == "bot"


async def test_sockets_are_not_compressed_so_they_cost_no_zlib_context(
    live_server: LiveServer,
) -> None:
    make_tenant(live_server.app.state.services.db, "acme", bot_mode=BotMode.OFF)
    async with open_chat(live_server.ws_url, "acme") as ws:  # the client offers deflate
        await send_message(ws, "c-1", "Hello")
        await read_until(ws, lambda f: f["type"] == "ack")
        assert ws.protocol.extensions == []


async def test_agent_message_posted_over_rest_reaches_the_open_widget(
    live_server: LiveServer,
) -> None:
    _, api_key = make_tenant(live_server.app.state.services.db, "acme", bot_mode=BotMode.OFF)
    async with open_chat(live_server.ws_url, "acme") as ws:
        await send_message(ws, "c-1", "My parcel never arrived.")
        frames = await read_until(ws, lambda f: f["type"] == "ack")
        conversation_id = frames[0]["conversation_id"]
        async with httpx.AsyncClient(base_url=live_server.http_url) as http:
            posted = await http.post(
                f"/v1/conversations/{conversation_id}/messages",
                json={"text": "Hi, this is Sam from support.", "author": "Sam"},
                headers={"Authorization": f"Bearer {api_key}"},
            )
            note = await http.post(
                f"/v1/conversations/{conversation_id}/messages",
                json={"text": "customer seems upset", "internal_note": True},
                headers={"Authorization": f"Bearer {api_key}"},
            )
        assert posted.status_code == 201 and note.status_code == 201
        live = await read_until(ws, lambda f: f["type"] == "message" and f["role"] == "agent")
        assert live[-1]["text"] == "Hi, this is Sam from support." and live[-1]["seq"] == 2
        assert await no_frame_within(ws, 0.5)  # the internal note never reaches the customer


async def test_bot_answers_with_the_tenants_active_adapter(
    tmp_path: Path, engine: EmbeddedEngine, adapter_dirs: tuple[Path, Path]
) -> None:
    url = f"sqlite:///{tmp_path / 'adapter.db'}"
    db = create_db_engine(url)
    upgrade_database(db)
    tenant, _ = make_tenant(db, "acme")
    with session_scope(db) as session:
        adapter = AdapterVersion(
            tenant_id=tenant.id,
            name="acme-test-v1",
            base_model="SmolLM2-135M-Instruct",
            path=str(adapter_dirs[0]),
            sha256="0" * 64,
            status=AdapterStatus.ACTIVE,
        )
        session.add(adapter)
        session.flush()
        row = session.get(Tenant, tenant.id)
        row.active_adapter_id = adapter.id
        session.add(row)
    db.dispose()

    settings = make_settings(tmp_path, url, port=free_port())
    try:
        with running_server(settings, engine) as live:
            assert "acme-test-v1" in await engine.list_adapters()
            async with open_chat(live.ws_url, "acme") as ws:
                await send_message(ws, "c-1", "Hello! Can I change my coffee order?")
                frames = await read_until(ws, is_bot_message)
            bot = stored_messages(live, frames[0]["conversation_id"])[-1]
            assert bot.role == Role.BOT and bot.adapter_version_id == adapter.id
    finally:
        await engine.unload_adapter("acme-test-v1")
