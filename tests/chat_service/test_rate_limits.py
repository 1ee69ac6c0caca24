"""Customer message rate limits: per connection, per IP, per tenant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import select
from websockets.exceptions import ConnectionClosed

from chat_service.rate_limit import RateLimiter
from core.db import session_scope
from core.models import BotMode, Message
from engines.embedded import EmbeddedEngine
from tests.chat_service.ws_client import open_chat, send_message
from tests.conftest import free_port, make_settings, running_server
from tests.factories import make_tenant


def test_a_bucket_allows_its_burst_then_refills_at_its_rate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr("chat_service.rate_limit.time.monotonic", lambda: now[0])
    limiter = RateLimiter()
    limits = [("connection", "c1", 6.0), ("tenant", "t", 100.0)]
    assert [limiter.take_now(limits) for _ in range(6)] == [0.0] * 6
    assert limiter.take_now(limits) == pytest.approx(10.0)  # 6 a minute: one every 10 s
    now[0] += 10
    assert limiter.take_now(limits) == 0.0
    # The tenant's bucket only lost tokens for messages that were let through.
    assert limiter.take_now([("tenant", "t", 100.0)]) == 0.0
    assert limiter.take_now([("connection", "c2", 6.0)]) == 0.0  # another connection is unaffected


@pytest.mark.anyio
async def test_messages_over_the_limit_are_refused_with_a_retry_time_and_not_stored(
    tmp_path: Path, engine: EmbeddedEngine
) -> None:
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'rate.db'}",
        port=free_port(),
        widget_messages_per_minute=3,
    )
    with running_server(settings, engine) as live:
        make_tenant(live.app.state.services.db, "acme", bot_mode=BotMode.OFF)
        async with open_chat(live.ws_url, "acme") as ws:
            for n in range(5):
                await send_message(ws, f"c-{n}", f"message {n}")
            answers = []
            while len(answers) < 5:
                frame = json.loads(await ws.recv())
                if frame["type"] in ("ack", "error"):
                    answers.append(frame)
        with session_scope(live.app.state.services.db) as session:
            stored = [m.text for m in session.exec(select(Message)).all()]
    assert [a["type"] for a in answers] == ["ack"] * 3 + ["error"] * 2
    assert {a["code"] for a in answers[3:]} == {"rate_limited"}
    assert all(15 <= a["retry_after"] <= 20 for a in answers[3:])
    assert [a["client_id"] for a in answers[3:]] == ["c-3", "c-4"]
    assert stored == ["message 0", "message 1", "message 2"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("trusted", "expected"), [([], ["ack", "ack", "error"]), (["127.0.0.1"], ["ack"] * 3)]
)
async def test_x_forwarded_for_counts_only_from_a_trusted_proxy(
    tmp_path: Path, engine: EmbeddedEngine, trusted: list[str], expected: list[str]
) -> None:
    """Three visitors behind distinct forwarded addresses, a per-IP limit of two: from an
    untrusted peer the header is anyone's to write, so all three are the peer's one address."""
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'xff.db'}",
        port=free_port(),
        widget_messages_per_minute_per_ip=2,
        trusted_proxies=trusted,
    )
    with running_server(settings, engine) as live:
        make_tenant(live.app.state.services.db, "acme", bot_mode=BotMode.OFF)
        answers = []
        for n in range(3):
            forwarded = {"X-Forwarded-For": f"203.0.113.{n + 1}"}
            async with open_chat(live.ws_url, "acme", additional_headers=forwarded) as ws:
                await send_message(ws, f"c-{n}", f"message {n}")
                while True:
                    frame = json.loads(await ws.recv())
                    if frame["type"] in ("ack", "error"):
                        answers.append(frame["type"])
                        break
    assert answers == expected


@pytest.mark.anyio
async def test_every_frame_type_is_rate_limited_and_a_flood_is_cut_off(
    tmp_path: Path, engine: EmbeddedEngine
) -> None:
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'frames.db'}",
        port=free_port(),
        widget_frames_per_minute=5,
    )
    with running_server(settings, engine) as live:
        make_tenant(live.app.state.services.db, "acme", bot_mode=BotMode.OFF)
        async with open_chat(live.ws_url, "acme") as ws:
            for _ in range(6):
                await ws.send(json.dumps({"type": "ping"}))
            answers = [json.loads(await ws.recv())["type"] for _ in range(6)]
            assert answers == ["pong"] * 5 + ["error"]
            with pytest.raises(ConnectionClosed) as closed:
                for _ in range(40):
                    await ws.send(json.dumps({"type": "csat", "score": 5}))
                while True:
                    await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert "too many frames" in closed.value.rcvd.reason


@pytest.mark.anyio
async def test_open_connections_per_address_are_capped(
    tmp_path: Path, engine: EmbeddedEngine
) -> None:
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'conns.db'}",
        port=free_port(),
        widget_connections_per_ip=2,
    )
    with running_server(settings, engine) as live:
        make_tenant(live.app.state.services.db, "acme", bot_mode=BotMode.OFF)
        async with open_chat(live.ws_url, "acme") as one, open_chat(live.ws_url, "acme") as two:
            for ws in (one, two):
                await ws.send(json.dumps({"type": "ping"}))
                assert json.loads(await ws.recv())["type"] == "pong"
            async with open_chat(live.ws_url, "acme") as third:
                with pytest.raises(ConnectionClosed) as closed:
                    await third.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
        async with open_chat(live.ws_url, "acme") as again:  # freed when they closed
            await again.send(json.dumps({"type": "ping"}))
            assert json.loads(await again.recv())["type"] == "pong"
