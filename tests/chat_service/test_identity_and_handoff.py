"""Visitor identity and handoff rules, over the widget's real WebSocket protocol."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from sqlmodel import select
from websockets.exceptions import ConnectionClosed

from chat_service import agent_desk
from chat_service.server import BackgroundServer
from core.db import session_scope
from core.models import BotMode, Conversation, Customer, CustomerExternalId
from engines.embedded import EmbeddedEngine
from tests.chat_service.ws_client import (
    is_bot_message,
    open_chat,
    read_until,
    send_message,
)
from tests.conftest import free_port, make_settings, running_server
from tests.factories import make_tenant

pytestmark = pytest.mark.anyio
TENANT_SECRET = "acme-widget-secret-of-at-least-32-bytes"


@pytest.fixture
def live(tmp_path: Path, engine: EmbeddedEngine) -> Iterator[BackgroundServer]:
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'identity.db'}",
        port=free_port(),
        widget_jwt_secrets={"acme": ["acme-old-secret-also-at-least-32-bytes", TENANT_SECRET]},
        handoff_timeout_s=0.5,
        handoff_check_interval_s=0.1,
    )
    with running_server(settings, engine) as server:
        make_tenant(server.app.state.services.db, "acme")
        make_tenant(server.app.state.services.db, "globex")
        yield server


async def hello(ws: Any, **fields: object) -> dict[str, Any]:
    await ws.send(json.dumps({"type": "hello", **fields}))
    return (await read_until(ws, lambda f: f["type"] == "identity"))[-1]


async def start_conversation(ws: Any, text: str = "Hello there") -> int:
    await send_message(ws, uuid.uuid4().hex, text)
    frames = await read_until(ws, lambda f: f["type"] == "ack")
    return int(frames[0]["conversation_id"])


def customer_of(live: BackgroundServer, conversation_id: int) -> Customer:
    with session_scope(live.app.state.services.db) as session:
        conversation = session.get(Conversation, conversation_id)
        assert conversation is not None and conversation.customer_id is not None
        customer = session.get(Customer, conversation.customer_id)
        assert customer is not None
        session.expunge(customer)
        return customer


def customer_token(secret: str = TENANT_SECRET, **claims: object) -> str:
    body = {"sub": "user-42", "name": "Ann", "email": "ann@example.test"}
    body["exp"] = int(time.time()) + 600  # type: ignore[assignment]
    body.update(claims)  # type: ignore[arg-type]
    return jwt.encode(body, secret, algorithm="HS256")


async def test_an_anonymous_visitor_keeps_one_customer_across_conversations(
    live: BackgroundServer,
) -> None:
    async with open_chat(live.ws_url, "acme") as ws:
        identity = await hello(ws)
        assert identity["verified"] is False and identity["visitor_token"]
        first = await start_conversation(ws)
    async with open_chat(live.ws_url, "acme") as ws:
        again = await hello(ws, visitor_token=identity["visitor_token"])
        assert again["visitor_token"] is None  # the token was accepted, not replaced
        second = await start_conversation(ws)
    assert first != second
    assert customer_of(live, first).id == customer_of(live, second).id


@pytest.mark.parametrize("how", ["issued for another tenant", "tampered", "not a token"])
async def test_a_forged_or_foreign_visitor_token_gets_a_fresh_anonymous_identity(
    live: BackgroundServer, how: str
) -> None:
    async with open_chat(live.ws_url, "globex") as ws:
        foreign = (await hello(ws))["visitor_token"]
        globex_conversation = await start_conversation(ws)
    token = {
        "issued for another tenant": foreign,
        "tampered": foreign[:-4] + ("AAAA" if not foreign.endswith("AAAA") else "BBBB"),
        "not a token": "hello",
    }[how]
    async with open_chat(live.ws_url, "acme") as ws:
        identity = await hello(ws, visitor_token=token)
        assert identity["visitor_token"] and identity["visitor_token"] != foreign
        acme_conversation = await start_conversation(ws)
    assert customer_of(live, acme_conversation).id != customer_of(live, globex_conversation).id


async def test_a_customer_token_signed_by_the_tenant_marks_the_customer_verified(
    live: BackgroundServer,
) -> None:
    async with open_chat(live.ws_url, "acme") as ws:
        identity = await hello(ws, customer_token=customer_token())
        assert identity == {"type": "identity", "visitor_token": None, "verified": True}
        conversation_id = await start_conversation(ws)
    customer = customer_of(live, conversation_id)
    assert customer.verified and customer.display_name == "Ann"
    assert customer.email == "ann@example.test"
    with session_scope(live.app.state.services.db) as session:
        link = session.exec(
            select(CustomerExternalId).where(CustomerExternalId.customer_id == customer.id)
        ).one()
    assert (link.source, link.external_id) == ("jwt", "user-42")


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (lambda: customer_token(exp=int(time.time()) - 10), "expired"),
        (
            lambda: customer_token(secret="not-the-tenants-secret-but-32-bytes-long"),
            "Signature verification",
        ),
        (
            lambda: jwt.encode({"sub": "x", "exp": 2**31}, None, algorithm="none"),
            "alg value is not allowed",
        ),
        (lambda: customer_token(sub=None), "sub"),
    ],
    ids=["expired", "wrong secret", "alg none", "no subject"],
)
async def test_a_bad_customer_token_closes_the_connection_with_1008_and_a_reason(
    live: BackgroundServer, token: Any, reason: str
) -> None:
    async with open_chat(live.ws_url, "acme") as ws:
        await ws.send(json.dumps({"type": "hello", "customer_token": token()}))
        with pytest.raises(ConnectionClosed) as closed:
            await read_until(ws, lambda f: False, timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert "invalid customer token" in closed.value.rcvd.reason
    assert reason.lower() in closed.value.rcvd.reason.lower()


async def test_asking_for_a_human_escalates_and_the_bot_stays_quiet(
    live: BackgroundServer,
) -> None:
    async with open_chat(live.ws_url, "acme") as ws:
        await send_message(ws, "c-1", "Can I talk to a real person please?")
        frames = await read_until(ws, lambda f: f["type"] == "status")
        later = await read_until(ws, lambda f: f.get("author") == "notice:no_agent")
    # Nothing from the bot, only the notice that nobody claimed it in time (0.5 s here).
    assert [f["type"] for f in later] == ["message"]
    notice = next(f for f in frames if f["type"] == "message" and f["role"] == "system")
    assert not any(f["type"] in ("reply_start", "delta") for f in frames + later)
    assert notice["author"] == "notice:escalated"
    assert frames[-1]["status"] == "escalated" and frames[-1]["assigned_agent"] is None
    with session_scope(live.app.state.services.db) as session:
        conversation = session.exec(select(Conversation)).one()
    assert conversation.escalation_reason == "customer asked for a human"


async def test_two_answers_rated_down_escalate_the_conversation(live: BackgroundServer) -> None:
    async with open_chat(live.ws_url, "acme") as ws:
        for n, question in enumerate(["Where is my order?", "That did not help. Where is it?"]):
            await send_message(ws, f"c-{n}", question)
            reply = (await read_until(ws, is_bot_message))[-1]
            await ws.send(json.dumps({"type": "rate", "message_id": reply["id"], "rating": -1}))
            await read_until(ws, lambda f: f["type"] == "saved")
        status = (await read_until(ws, lambda f: f["type"] == "status"))[-1]
    assert status["status"] == "escalated"
    with session_scope(live.app.state.services.db) as session:
        conversation = session.exec(select(Conversation)).one()
    assert conversation.escalation_reason == "2 failed answers"


async def test_an_unclaimed_handoff_tells_the_customer_and_takes_an_email(
    live: BackgroundServer,
) -> None:
    async with open_chat(live.ws_url, "acme") as ws:
        await hello(ws)
        await ws.send(json.dumps({"type": "handoff"}))  # the "talk to a human" button
        frames = await read_until(ws, lambda f: f["type"] == "status" and f["offer_email"])
        notices = [f["author"] for f in frames if f["type"] == "message"]
        assert notices == ["notice:escalated", "notice:no_agent"]

        await ws.send(json.dumps({"type": "contact", "email": "not an email"}))
        error = (await read_until(ws, lambda f: f["type"] in ("error", "saved")))[-1]
        assert error["type"] == "error" and "not an email address" in error["detail"]
        await ws.send(json.dumps({"type": "contact", "email": "ann@example.test"}))
        assert (await read_until(ws, lambda f: f["type"] in ("error", "saved")))[-1] == {
            "type": "saved",
            "what": "contact",
        }
        conversation_id = frames[0]["conversation_id"]
    assert customer_of(live, conversation_id).email == "ann@example.test"


async def test_csat_is_taken_only_once_the_conversation_is_resolved(
    live: BackgroundServer,
) -> None:
    with session_scope(live.app.state.services.db) as session:
        from core.crud.tenants import update_tenant

        update_tenant(session=session, slug="acme", bot_mode=BotMode.OFF)
    async with open_chat(live.ws_url, "acme") as ws:
        conversation_id = await start_conversation(ws)
        await ws.send(json.dumps({"type": "csat", "score": 5}))
        early = (await read_until(ws, lambda f: f["type"] in ("error", "saved")))[-1]
        assert early["type"] == "error" and "once the conversation is resolved" in early["detail"]

        tenant_id = customer_of(live, conversation_id).tenant_id
        live.run(
            agent_desk.resolve(
                live.app.state.services, tenant_id=tenant_id, conversation_id=conversation_id
            )
        )
        status = (await read_until(ws, lambda f: f["type"] == "status"))[-1]
        assert status["status"] == "resolved" and status["csat"] is None
        await ws.send(json.dumps({"type": "csat", "score": 4}))
        assert (await read_until(ws, lambda f: f["type"] in ("error", "saved")))[-1]["type"] == (
            "saved"
        )
    with session_scope(live.app.state.services.db) as session:
        assert session.get(Conversation, conversation_id).csat == 4  # type: ignore[union-attr]
