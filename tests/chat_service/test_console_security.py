"""Console accounts, cookies, CSRF and tenant isolation, over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import select
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from chat_service.server import BackgroundServer
from core.crud.agents import create_agent
from core.crud.conversations import start_conversation
from core.db import session_scope
from core.models import Agent, BotMode
from engines.embedded import EmbeddedEngine
from tests.conftest import free_port, make_settings, running_server
from tests.factories import make_tenant

PASSWORD = "a long enough password"


@pytest.fixture
def live(tmp_path: Path, engine: EmbeddedEngine) -> Iterator[BackgroundServer]:
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'console.db'}",
        port=free_port(),
        console_session_check_s=0.2,
    )
    with running_server(settings, engine) as server:
        db = server.app.state.services.db
        for slug in ("acme", "globex"):
            tenant, _ = make_tenant(db, slug, bot_mode=BotMode.OFF)
            with session_scope(db) as session:
                assert tenant.id is not None
                create_agent(
                    session=session,
                    tenant_id=tenant.id,
                    email=f"sam@{slug}.test",
                    password=PASSWORD,
                )
        yield server


def login(live: BackgroundServer, tenant: str, password: str = PASSWORD) -> httpx.Response:
    return httpx.post(
        f"{live.http_url}/console/api/login",
        json={"tenant": tenant, "email": f"sam@{tenant}.test", "password": password},
    )


class Console:
    """An agent's signed-in HTTP client (the cookie is Secure, so it is sent by hand here)."""

    def __init__(self, live: BackgroundServer, tenant: str) -> None:
        response = login(live, tenant)
        assert response.status_code == 200, response.text
        self.cookie = response.cookies["supportloop_console"]
        self.csrf = response.json()["csrf_token"]
        self.base_url = live.http_url
        self.headers = {"Cookie": f"supportloop_console={self.cookie}"}

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.base_url + path, headers=self.headers)

    def post(
        self,
        path: str,
        json: object = None,
        csrf: str | None = "valid",
        **headers: str,
    ) -> httpx.Response:
        """With the CSRF token (csrf="valid"), a wrong one, or none (csrf=None)."""
        if csrf is not None:
            headers["X-CSRF-Token"] = self.csrf if csrf == "valid" else csrf
        return httpx.post(
            self.base_url + path,
            json={"text": "hello"} if json is None else json,
            headers={**self.headers, **headers},
        )


def acme_conversation(live: BackgroundServer) -> int:
    db = live.app.state.services.db
    with session_scope(db) as session:
        from core.crud.tenants import get_tenant_by_slug

        tenant = get_tenant_by_slug(session=session, slug="acme")
        assert tenant is not None and tenant.id is not None
        conversation, _ = start_conversation(session=session, tenant_id=tenant.id)
        assert conversation.id is not None
        return conversation.id


def test_sign_in_sets_a_hardened_cookie_and_stores_only_an_argon2_hash(
    live: BackgroundServer,
) -> None:
    response = login(live, "acme")
    assert response.status_code == 200
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie
    with session_scope(live.app.state.services.db) as session:
        stored = session.exec(select(Agent).where(Agent.email == "sam@acme.test")).one()
    assert stored.password_hash.startswith("$argon2id$") and PASSWORD not in stored.password_hash


@pytest.mark.parametrize(
    ("tenant", "password"),
    [("acme", "wrong password!"), ("nosuch", PASSWORD), ("globex", "a long enough passwor")],
)
def test_wrong_credentials_get_one_answer_that_reveals_nothing(
    live: BackgroundServer, tenant: str, password: str
) -> None:
    response = login(live, tenant, password)
    assert response.status_code == 401
    assert response.json()["detail"] == "wrong workspace, email or password"
    assert "set-cookie" not in response.headers


def test_password_guessing_is_slowed_down_per_account(live: BackgroundServer) -> None:
    answers = [login(live, "acme", "wrong password!").status_code for _ in range(6)]
    assert answers == [401] * 5 + [429]
    refused = login(live, "acme")  # even the right password waits now
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert login(live, "globex").status_code == 200  # other accounts are unaffected


def test_state_changes_need_the_csrf_token_and_the_consoles_own_origin(
    live: BackgroundServer,
) -> None:
    console = Console(live, "acme")
    path = f"/console/api/conversations/{acme_conversation(live)}/messages"
    missing = console.post(path, csrf=None)
    assert missing.status_code == 403 and "X-CSRF-Token" in missing.json()["detail"]
    assert console.post(path, csrf="0" * 64).status_code == 403
    cross_site = console.post(path, Origin="https://evil.example")
    assert cross_site.status_code == 403 and "cross-site" in cross_site.json()["detail"]
    assert console.post(path).status_code == 201
    anonymous = httpx.post(f"{live.http_url}{path}", json={"text": "hi"})
    assert anonymous.status_code == 401


def test_an_agent_sees_and_touches_only_their_own_tenants_conversations(
    live: BackgroundServer,
) -> None:
    conversation_id = acme_conversation(live)
    globex = Console(live, "globex")
    assert globex.get("/console/api/conversations").json() == []
    assert globex.get(f"/console/api/conversations/{conversation_id}").status_code == 404
    sent = globex.post(f"/console/api/conversations/{conversation_id}/messages")
    assert sent.status_code == 404
    takeover = globex.post(f"/console/api/conversations/{conversation_id}/takeover")
    assert takeover.status_code == 404
    acme = Console(live, "acme")
    assert [c["id"] for c in acme.get("/console/api/conversations").json()] == [conversation_id]


def test_signing_out_ends_the_session_on_the_server(live: BackgroundServer) -> None:
    console = Console(live, "acme")
    assert console.post("/console/api/logout").status_code == 204
    assert console.get("/console/api/me").status_code == 401  # the old cookie is dead


@pytest.mark.anyio
async def test_the_console_socket_refuses_strangers_and_other_sites(
    live: BackgroundServer,
) -> None:
    url = f"{live.ws_url}/console/ws"
    cookie = {"Cookie": f"supportloop_console={Console(live, 'acme').cookie}"}
    for headers, origin, reason in [
        ({}, None, "sign in"),
        (cookie, "https://evil.example", "origin not allowed"),
    ]:
        async with connect(url, additional_headers=headers, origin=origin) as ws:  # type: ignore[arg-type]
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        assert reason in closed.value.rcvd.reason
    async with connect(url, additional_headers=cookie) as ws:
        assert await ws.recv() == '{"type":"ready"}'


@pytest.mark.anyio
async def test_a_signed_out_agents_open_socket_stops_receiving(live: BackgroundServer) -> None:
    console = Console(live, "acme")
    cookie = {"Cookie": f"supportloop_console={console.cookie}"}
    async with connect(f"{live.ws_url}/console/ws", additional_headers=cookie) as ws:
        assert await ws.recv() == '{"type":"ready"}'
        assert console.post("/console/api/logout").status_code == 204
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert "signed out" in closed.value.rcvd.reason
