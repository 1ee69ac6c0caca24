"""Tenant isolation, route by route: every route that takes an id is called as tenant A with
tenant B's ids and must refuse (404, or 403/401 where A's credentials are not the kind the
route takes), and B's data must be as it was. A new route with a path parameter fails
`test_every_route_with_an_id_has_an_isolation_case` until it gets a case here."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute
from sqlmodel import select
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from chat_service.server import BackgroundServer
from core.crud.agents import create_agent
from core.crud.conversations import append_message, start_conversation
from core.crud.knowledge import put_document
from core.crud.suggestions import create_suggestion
from core.db import session_scope
from core.models import BotMode, Conversation, KnowledgeDocument, Message, Role, Suggestion
from engines.embedded import EmbeddedEngine
from supportloop.app import build_app
from tests.chat_service.ws_client import no_frame_within
from tests.conftest import free_port, make_settings
from tests.connectors.test_webhooks import SECRETS, zendesk_body, zendesk_headers
from tests.factories import make_tenant

PASSWORD = "a long enough password"


@dataclass
class TenantData:
    slug: str
    api_key: str
    conversation_id: int
    conversation_token: str
    message_id: int
    suggestion_id: int
    doc_id: str


def seed(server: BackgroundServer, slug: str) -> TenantData:
    db = server.app.state.services.db
    tenant, api_key = make_tenant(db, slug, bot_mode=BotMode.OFF)
    assert tenant.id is not None
    with session_scope(db) as session:
        create_agent(
            session=session, tenant_id=tenant.id, email=f"sam@{slug}.test", password=PASSWORD
        )
        conversation, token = start_conversation(session=session, tenant_id=tenant.id)
        question, _ = append_message(
            session=session, conversation=conversation, role=Role.CUSTOMER, text="Hi there"
        )
        reply, _ = append_message(
            session=session, conversation=conversation, role=Role.BOT, text="Hello!"
        )
        suggestion = create_suggestion(
            session=session,
            conversation=conversation,
            reply_to=question,
            draft_text="A draft",
            adapter_version_id=None,
        )
        put_document(
            session=session,
            tenant_id=tenant.id,
            source="upload",
            doc_id=f"{slug}-returns",
            title="Returns",
            body="# Returns\n\n30 days.",
            content_hash="h",
            embedder="none",
            updated=None,
            status="current",
            superseded_by=None,
            url=None,
            chunks=[],
        )
        assert conversation.id and reply.id and suggestion.id
        return TenantData(
            slug, api_key, conversation.id, token, reply.id, suggestion.id, f"{slug}-returns"
        )


@pytest.fixture
def two_tenants(
    tmp_path: Path, engine: EmbeddedEngine
) -> Iterator[tuple[BackgroundServer, TenantData, TenantData]]:
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'isolation.db'}",
        port=free_port(),
        connector_secrets={**SECRETS, "globex/zendesk": ["globex-secret"]},
        knowledge={"enabled": False},
    )
    with BackgroundServer(settings, build_app(settings, engine=engine)) as server:
        yield server, seed(server, "acme"), seed(server, "globex")


class Caller:
    """Tenant A's three kinds of credentials: its API key, a console session, its webhooks."""

    def __init__(self, server: BackgroundServer, a: TenantData) -> None:
        self.base = server.http_url
        self.api = {"Authorization": f"Bearer {a.api_key}"}
        login = httpx.post(
            f"{self.base}/console/api/login",
            json={"tenant": a.slug, "email": f"sam@{a.slug}.test", "password": PASSWORD},
        )
        assert login.status_code == 200, login.text
        self.console = {
            "Cookie": f"supportloop_console={login.cookies['supportloop_console']}",
            "X-CSRF-Token": login.json()["csrf_token"],
        }

    def call(self, method: str, path: str, headers: dict[str, str], **kw: object) -> int:
        response = httpx.request(method, self.base + path, headers=headers, timeout=30, **kw)  # type: ignore[arg-type]
        return response.status_code


# path -> what tenant A does with tenant B's ids there, and the statuses that count as refusal.
Case = Callable[[Caller, TenantData], list[tuple[str, int, set[int]]]]
NOT_FOUND = {404}
NOT_ADMIN = {401, 403}  # admin-token routes: a tenant key is the wrong kind of credential


def rest(method: str, path: str, allowed: set[int], **kw: object) -> Case:
    def run(c: Caller, b: TenantData) -> list[tuple[str, int, set[int]]]:
        target = path.format(**vars(b))
        return [(f"{method} {target}", c.call(method, target, c.api, **kw), allowed)]

    return run


def console(method: str, path: str, **kw: object) -> Case:
    def run(c: Caller, b: TenantData) -> list[tuple[str, int, set[int]]]:
        target = path.format(**vars(b))
        return [(f"{method} {target}", c.call(method, target, c.console, **kw), NOT_FOUND)]

    return run


def console_actions(c: Caller, b: TenantData) -> list[tuple[str, int, set[int]]]:
    out = []
    for action in ("takeover", "handback", "resolve", "typing"):
        target = f"/console/api/conversations/{b.conversation_id}/{action}"
        out.append((f"POST {target}", c.call("POST", target, c.console), NOT_FOUND))
    return out


def webhook(c: Caller, b: TenantData) -> list[tuple[str, int, set[int]]]:
    raw = zendesk_body("555")
    target = f"/v1/webhooks/zendesk/{b.slug}"
    # Signed with A's secret (acme/zendesk), addressed to B.
    status = c.call("POST", target, zendesk_headers(raw, secret="zd-new"), content=raw)
    return [(f"POST {target}", status, {401})]


CASES: dict[str, Case] = {
    "/v1/tenants/{slug}": rest("PATCH", "/v1/tenants/{slug}", NOT_ADMIN, json={"bot_mode": "auto"}),
    "/v1/tenants/{slug}/keys": rest("GET", "/v1/tenants/{slug}/keys", NOT_ADMIN),
    "/v1/tenants/{slug}/keys/rotate": rest("POST", "/v1/tenants/{slug}/keys/rotate", NOT_ADMIN),
    "/v1/tenants/{slug}/keys/{prefix}": rest("DELETE", "/v1/tenants/{slug}/keys/slk_", NOT_ADMIN),
    "/v1/conversations/{conversation_id}/messages": lambda c, b: [
        *rest("GET", "/v1/conversations/{conversation_id}/messages", NOT_FOUND)(c, b),
        *rest(
            "POST", "/v1/conversations/{conversation_id}/messages", NOT_FOUND, json={"text": "hi"}
        )(c, b),
    ],
    "/v1/knowledge/documents/{doc_id}": rest(
        "DELETE", "/v1/knowledge/documents/{doc_id}", NOT_FOUND
    ),
    "/v1/admin/tenants/{slug}/adapters": lambda c, b: [
        *rest("GET", "/v1/admin/tenants/{slug}/adapters", NOT_ADMIN)(c, b),
        *rest("POST", "/v1/admin/tenants/{slug}/adapters", NOT_ADMIN, json={})(c, b),
    ],
    "/v1/admin/tenants/{slug}/adapters/{name}/activate": rest(
        "POST", "/v1/admin/tenants/{slug}/adapters/any/activate", NOT_ADMIN
    ),
    "/v1/admin/tenants/{slug}/adapters/rollback": rest(
        "POST", "/v1/admin/tenants/{slug}/adapters/rollback", NOT_ADMIN
    ),
    "/console/api/conversations/{conversation_id}": console(
        "GET", "/console/api/conversations/{conversation_id}"
    ),
    "/console/api/conversations/{conversation_id}/messages": console(
        "POST", "/console/api/conversations/{conversation_id}/messages", json={"text": "hi"}
    ),
    "/console/api/conversations/{conversation_id}/{action}": console_actions,
    "/console/api/suggestions/{suggestion_id}": console(
        "POST", "/console/api/suggestions/{suggestion_id}", json={"decision": "accept"}
    ),
    "/console/api/review/{message_id}": console(
        "POST", "/console/api/review/{message_id}", json={"corrected_text": "Better."}
    ),
    "/v1/webhooks/{provider}/{tenant}": webhook,
}
# WebSocket routes are walked by test_the_sockets_never_cross_tenants below.
SOCKETS = {"/v1/chat/ws", "/console/ws"}


def routes_with_ids(server: BackgroundServer) -> set[str]:
    out = set()
    for route in server.app.routes:
        if isinstance(route, APIWebSocketRoute):
            out.add(route.path)
        elif isinstance(route, APIRoute) and "{" in route.path:
            out.add(route.path)
    return out


def snapshot(server: BackgroundServer, b: TenantData) -> tuple[object, ...]:
    with session_scope(server.app.state.services.db) as session:
        conversation = session.get(Conversation, b.conversation_id)
        assert conversation is not None
        messages = session.exec(
            select(Message.text).where(Message.conversation_id == b.conversation_id)
        ).all()
        suggestion = session.get(Suggestion, b.suggestion_id)
        assert suggestion is not None
        docs = session.exec(
            select(KnowledgeDocument.doc_id).where(KnowledgeDocument.doc_id == b.doc_id)
        ).all()
        return (
            conversation.status,
            conversation.assigned_agent,
            tuple(messages),
            suggestion.status,
            tuple(docs),
        )


def test_every_route_with_an_id_has_an_isolation_case(
    two_tenants: tuple[BackgroundServer, TenantData, TenantData],
) -> None:
    server, _, _ = two_tenants
    assert routes_with_ids(server) == set(CASES) | SOCKETS


def test_tenant_a_is_refused_on_every_route_with_tenant_bs_ids(
    two_tenants: tuple[BackgroundServer, TenantData, TenantData],
) -> None:
    server, a, b = two_tenants
    caller = Caller(server, a)
    before = snapshot(server, b)
    outcomes = [outcome for case in CASES.values() for outcome in case(caller, b)]
    wrong = [(what, status) for what, status, allowed in outcomes if status not in allowed]
    assert wrong == []
    assert snapshot(server, b) == before
    # The same calls with A's own ids succeed: the refusals above are about the tenant.
    assert caller.call("GET", f"/v1/conversations/{a.conversation_id}/messages", caller.api) == 200
    assert (
        caller.call(
            "POST", f"/console/api/conversations/{a.conversation_id}/typing", caller.console
        )
        == 204
    )


@pytest.mark.anyio
async def test_the_sockets_never_cross_tenants(
    two_tenants: tuple[BackgroundServer, TenantData, TenantData],
) -> None:
    server, a, b = two_tenants
    caller = Caller(server, a)
    # A widget of tenant A cannot resume tenant B's conversation with B's token.
    url = f"{server.ws_url}/v1/chat/ws?tenant={a.slug}&token={b.conversation_token}"
    async with connect(url) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert frame["type"] != "session", frame
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008

    # Agent A's console socket hears nothing of B's conversation, while B's widget does.
    cookie = caller.console["Cookie"]
    async with (
        connect(
            f"{server.ws_url}/console/ws",
            additional_headers={"Cookie": cookie, "Origin": server.http_url},
        ) as console_a,
        connect(
            f"{server.ws_url}/v1/chat/ws?tenant={b.slug}&token={b.conversation_token}"
        ) as widget_b,
    ):
        assert json.loads(await asyncio.wait_for(console_a.recv(), 10))["type"] == "ready"
        response = httpx.post(
            f"{server.http_url}/v1/conversations/{b.conversation_id}/messages",
            headers={"Authorization": f"Bearer {b.api_key}"},
            json={"text": "an agent of B writes"},
        )
        assert response.status_code == 201
        frames = []
        while not any(f.get("text") == "an agent of B writes" for f in frames):
            frames.append(json.loads(await asyncio.wait_for(widget_b.recv(), 10)))
        assert await no_frame_within(console_a, 1.0)
