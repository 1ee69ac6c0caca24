"""The REST API under /v1 through the real app (TestClient runs its lifespan)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from chat_service.app import create_app
from core.crud.conversations import append_message, start_conversation
from core.db import session_scope
from core.models import ConversationStatus, Role
from engines.embedded import EmbeddedEngine
from tests.chat_service.ws_client import is_bot_message, open_chat, read_until, send_message
from tests.conftest import ADMIN_TOKEN, free_port, make_settings, running_server


@pytest.fixture
def client(tmp_path: Path, engine: EmbeddedEngine, db_url: str) -> Iterator[TestClient]:
    """The app on each database backend."""
    app = create_app(make_settings(tmp_path, db_url), engine=engine)
    with TestClient(app) as test_client:
        yield test_client


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def new_tenant(client: TestClient, slug: str = "acme") -> tuple[int, dict[str, str]]:
    response = client.post("/v1/tenants", json={"slug": slug}, headers=admin())
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["api_key"].startswith("slk_")
    return body["tenant"]["id"], {"Authorization": f"Bearer {body['api_key']}"}


def seed_conversations(client: TestClient, tenant_id: int, count: int) -> list[int]:
    db = client.app.state.services.db  # type: ignore[attr-defined]
    ids = []
    with session_scope(db) as session:
        for i in range(count):
            conversation, _ = start_conversation(session=session, tenant_id=tenant_id)
            append_message(
                session=session, conversation=conversation, role=Role.CUSTOMER, text=f"q{i}"
            )
            if i % 2:
                conversation.status = ConversationStatus.RESOLVED
            ids.append(conversation.id)
    return ids


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "engine": "ok"}


def test_creating_a_tenant_needs_the_admin_token(client: TestClient) -> None:
    assert client.post("/v1/tenants", json={"slug": "acme"}).status_code == 401
    wrong = client.post(
        "/v1/tenants", json={"slug": "acme"}, headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401 and wrong.json()["detail"] == "invalid admin token"
    new_tenant(client)
    again = client.post("/v1/tenants", json={"slug": "acme"}, headers=admin())
    assert again.status_code == 409 and "already exists" in again.json()["detail"]
    bad = client.post("/v1/tenants", json={"slug": "Bad Slug"}, headers=admin())
    assert bad.status_code == 422 and "invalid tenant slug" in bad.json()["detail"]


def test_a_wrong_api_key_is_refused_with_401(client: TestClient) -> None:
    new_tenant(client)
    missing = client.get("/v1/conversations")
    assert missing.status_code == 401 and "missing bearer token" in missing.json()["detail"]
    wrong = client.get("/v1/conversations", headers={"Authorization": "Bearer slk_wrong"})
    assert wrong.status_code == 401 and wrong.json()["detail"] == "invalid or revoked API key"
    assert wrong.headers["www-authenticate"] == "Bearer"


def test_conversations_are_paginated_and_filtered_by_status(client: TestClient) -> None:
    tenant_id, auth = new_tenant(client)
    ids = seed_conversations(client, tenant_id, 5)
    first = client.get("/v1/conversations", params={"limit": 2}, headers=auth).json()
    assert [c["id"] for c in first["items"]] == [ids[4], ids[3]]
    rest = client.get(
        "/v1/conversations", params={"limit": 2, "before": first["next_before"]}, headers=auth
    ).json()
    assert [c["id"] for c in rest["items"]] == [ids[2], ids[1]]
    resolved = client.get("/v1/conversations", params={"status": "resolved"}, headers=auth).json()
    assert [c["id"] for c in resolved["items"]] == [ids[3], ids[1]]
    assert resolved["next_before"] is None
    bad = client.get("/v1/conversations", params={"status": "closed"}, headers=auth)
    assert bad.status_code == 422


def test_messages_of_a_conversation_and_agent_replies(client: TestClient) -> None:
    tenant_id, auth = new_tenant(client)
    (conversation_id,) = seed_conversations(client, tenant_id, 1)
    url = f"/v1/conversations/{conversation_id}/messages"
    posted = client.post(
        url, json={"text": "On its way!", "author": "Sam", "client_id": "a1"}, headers=auth
    )
    assert posted.status_code == 201
    assert posted.json() | {"seq": 2, "role": "agent", "author": "Sam"} == posted.json()
    retried = client.post(url, json={"text": "On its way!", "client_id": "a1"}, headers=auth)
    assert retried.json()["id"] == posted.json()["id"]  # retry-safe
    messages = client.get(url, headers=auth).json()["items"]
    assert [(m["seq"], m["role"]) for m in messages] == [(1, "customer"), (2, "agent")]
    after = client.get(url, params={"after_seq": 1}, headers=auth).json()["items"]
    assert [m["seq"] for m in after] == [2]
    empty = client.post(url, json={"text": ""}, headers=auth)
    assert empty.status_code == 422


def test_unknown_ids_are_404_with_a_reason(client: TestClient) -> None:
    _, auth = new_tenant(client)
    for response in (
        client.get("/v1/conversations/999999/messages", headers=auth),
        client.post("/v1/conversations/999999/messages", json={"text": "hi"}, headers=auth),
    ):
        assert response.status_code == 404
        assert response.json()["detail"] == "conversation 999999 not found"


def test_one_tenant_cannot_read_another_tenants_conversation(client: TestClient) -> None:
    acme_id, _ = new_tenant(client, "acme")
    _, other_auth = new_tenant(client, "other")
    (conversation_id,) = seed_conversations(client, acme_id, 1)
    response = client.get(f"/v1/conversations/{conversation_id}/messages", headers=other_auth)
    assert response.status_code == 404


def test_openapi_documents_the_api_and_its_bearer_auth(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert {
        "/v1/tenants",
        "/v1/conversations",
        "/v1/conversations/{conversation_id}/messages",
        "/healthz",
        "/readyz",
    } <= set(schema["paths"])
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


@pytest.mark.anyio
async def test_demo_page_embeds_the_widget_for_the_demo_tenant(
    tmp_path: Path, engine: EmbeddedEngine
) -> None:
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'demo.db'}", demo_tenant="demo", port=free_port()
    )
    with running_server(settings, engine) as live:
        async with httpx.AsyncClient(base_url=live.http_url) as http:
            page = await http.get("/")
            script = await http.get("/widget.js")
        assert page.status_code == 200
        assert '<script src="/widget.js" data-tenant="demo"></script>' in page.text
        assert script.headers["content-type"].startswith("text/javascript")
        assert "/v1/chat/ws" in script.text
        async with open_chat(live.ws_url, "demo") as ws:
            await send_message(ws, "c-1", "Hello there")
            frames = await read_until(ws, is_bot_message)
        assert frames[-1]["text"]
