"""Webhook receivers (Zendesk, Chatwoot): verified, idempotent, lossless."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as settings_hypothesis
from hypothesis import strategies as st
from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import col, func, select

from chat_service.server import BackgroundServer
from connectors.webhooks import Delivery, receive
from core.db import session_scope
from core.models import Message, Role, WebhookEvent
from core.settings import Settings
from engines.embedded import EmbeddedEngine
from supportloop.app import build_app
from tests.conftest import free_port, make_settings
from tests.factories import make_tenant

SECRETS = {"acme/zendesk": ["zd-new", "zd-old"], "acme/chatwoot": ["cw-secret"]}


def zendesk_body(
    comment_id: str = "9876543210", *, staff: bool = False, public: bool = True
) -> bytes:
    return json.dumps(
        {
            "type": "zen:event-type:ticket.comment_added",
            "account_id": 22129848,
            "id": f"evt-{comment_id}",
            "time": "2025-01-08T14:25:30.123456Z",
            "subject": "zen:ticket:5158",
            "detail": {"id": "5158", "subject": "Cannot login", "via": {"channel": "email"}},
            "event": {
                "comment": {
                    "id": comment_id,
                    "body": "Reinstalled as you suggested, that fixed it, thanks!",
                    "is_public": public,
                    "author": {"id": "844", "is_staff": staff, "name": "Dana Customer"},
                }
            },
        }
    ).encode()


def zendesk_headers(raw: bytes, secret: str = "zd-old", ts: str | None = None) -> dict[str, str]:
    ts = ts or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    sig = base64.b64encode(
        hmac.new(secret.encode(), ts.encode() + raw, hashlib.sha256).digest()
    ).decode()
    return {"x-zendesk-webhook-signature": sig, "x-zendesk-webhook-signature-timestamp": ts}


def chatwoot_body(
    message_id: int = 9001, *, sender_type: str = "contact", private: bool = False
) -> bytes:
    return json.dumps(
        {
            "event": "message_created",
            "id": message_id,
            "content": "My order #4411 never arrived",
            "message_type": "incoming" if sender_type == "contact" else "outgoing",
            "private": private,
            "created_at": "2025-01-08T14:25:30.000Z",
            "sender": {"id": 77, "name": "Dana Customer", "type": sender_type},
            "conversation": {"id": 312, "inbox_id": 4, "status": "open"},
            "account": {"id": 1, "name": "Acme"},
        }
    ).encode()


def chatwoot_headers(
    raw: bytes, secret: str = "cw-secret", ts: int | None = None
) -> dict[str, str]:
    stamp = str(ts or int(time.time()))
    sig = (
        "sha256="
        + hmac.new(secret.encode(), stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
    )
    return {
        "x-chatwoot-signature": sig,
        "x-chatwoot-timestamp": stamp,
        "x-chatwoot-delivery": f"d-{hash(raw)}",
    }


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return make_settings(tmp_path, db_url, connector_secrets=SECRETS)


def deliver(db: DbEngine, settings: Settings, provider: str, raw: bytes, headers: dict[str, str]):  # noqa: ANN201
    return receive(db=db, settings=settings, delivery=Delivery(provider, "acme", raw, headers))


def messages(db: DbEngine) -> list[Message]:
    with session_scope(db) as session:
        return list(session.exec(select(Message).order_by(col(Message.id))))


def events(db: DbEngine) -> list[WebhookEvent]:
    with session_scope(db) as session:
        return list(session.exec(select(WebhookEvent)))


def test_signed_zendesk_comment_is_stored_once(db: DbEngine, settings: Settings) -> None:
    make_tenant(db)
    raw = zendesk_body()
    first = deliver(db, settings, "zendesk", raw, zendesk_headers(raw))
    assert (first.status_code, first.body["status"]) == (200, "processed")
    again = deliver(db, settings, "zendesk", raw, zendesk_headers(raw, secret="zd-new"))
    assert (again.status_code, again.body["status"]) == (200, "duplicate")
    (message,) = messages(db)
    assert (message.role, message.source, message.external_id) == (
        Role.CUSTOMER,
        "zendesk",
        "9876543210",
    )
    assert message.sent_at == datetime(2025, 1, 8, 14, 25, 30, 123456, tzinfo=UTC)
    agent_note = zendesk_body("111", staff=True, public=False)
    assert (
        deliver(db, settings, "zendesk", agent_note, zendesk_headers(agent_note)).status_code == 200
    )
    note = messages(db)[-1]
    assert (note.role, note.internal_note) == (Role.AGENT, True)


def test_signed_chatwoot_message_is_stored_and_bot_messages_are_skipped(
    db: DbEngine, settings: Settings
) -> None:
    make_tenant(db)
    raw = chatwoot_body()
    assert deliver(db, settings, "chatwoot", raw, chatwoot_headers(raw)).status_code == 200
    bot = chatwoot_body(9002, sender_type="agent_bot")
    assert (
        deliver(db, settings, "chatwoot", bot, chatwoot_headers(bot)).body["status"] == "processed"
    )
    (message,) = messages(db)
    assert (message.role, message.text, message.external_id) == (
        Role.CUSTOMER,
        "My order #4411 never arrived",
        "1:9001",
    )


@pytest.mark.parametrize("provider", ["zendesk", "chatwoot"])
def test_forged_stale_or_unsigned_deliveries_are_refused_and_store_nothing(
    db: DbEngine, settings: Settings, provider: str
) -> None:
    make_tenant(db)
    if provider == "zendesk":
        raw = zendesk_body()
        forged = zendesk_headers(raw, secret="wrong")
        stale = zendesk_headers(raw, ts="2025-01-08T14:25:30Z")
        tampered = raw.replace(b"thanks", b"THANKS")
        signed = zendesk_headers(raw)
    else:
        raw = chatwoot_body()
        forged = chatwoot_headers(raw, secret="wrong")
        stale = chatwoot_headers(raw, ts=int(time.time()) - 301)
        tampered = raw.replace(b"4411", b"4412")
        signed = chatwoot_headers(raw)
    for body, headers in ((raw, forged), (raw, stale), (tampered, signed), (raw, {})):
        outcome = deliver(db, settings, provider, body, headers)
        assert outcome.status_code == 401, outcome.body
    unconfigured = settings.model_copy(update={"connector_secrets": {}})
    assert deliver(db, unconfigured, provider, raw, signed).status_code == 401
    assert messages(db) == [] and events(db) == []


def test_malformed_bodies_get_400_with_a_reason_and_are_kept(
    db: DbEngine, settings: Settings
) -> None:
    make_tenant(db)
    for raw, reason in ((b"{not json", "not valid JSON"), (b'{"type": "x"}', "missing")):
        outcome = deliver(db, settings, "zendesk", raw, zendesk_headers(raw))
        assert outcome.status_code == 400 and reason in outcome.body["detail"]
    kept = events(db)
    assert [e.status for e in kept] == ["dead", "dead"]
    assert kept[0].body == "{not json" and "not valid JSON" in kept[0].last_error
    assert messages(db) == []


def test_unknown_provider_or_tenant_is_404(db: DbEngine, settings: Settings) -> None:
    make_tenant(db)
    assert deliver(db, settings, "myspace", b"{}", {}).status_code == 404
    outcome = receive(db=db, settings=settings, delivery=Delivery("zendesk", "nobody", b"{}", {}))
    assert outcome.status_code == 404 and "nobody" in outcome.body["detail"]


@pytest.fixture
def webhook_server(
    tmp_path: Path, db_url: str, engine: EmbeddedEngine
) -> Iterator[BackgroundServer]:
    settings = make_settings(tmp_path, db_url, connector_secrets=SECRETS, port=free_port())
    with BackgroundServer(settings, build_app(settings, engine=engine)) as server:
        make_tenant(server.app.state.services.db)
        yield server


@pytest.mark.anyio
async def test_the_same_event_delivered_50_times_concurrently_stores_one_row(
    webhook_server: BackgroundServer,
) -> None:
    raw = zendesk_body()
    headers = zendesk_headers(raw)
    async with httpx.AsyncClient(base_url=webhook_server.http_url, timeout=60) as http:
        responses = await asyncio.gather(
            *(
                http.post("/v1/webhooks/zendesk/acme", content=raw, headers=headers)
                for _ in range(50)
            )
        )
    assert {r.status_code for r in responses} == {200}
    statuses = sorted(r.json()["status"] for r in responses)
    assert statuses.count("processed") == 1 and statuses.count("duplicate") == 49
    db = webhook_server.app.state.services.db
    with session_scope(db) as session:
        assert session.exec(select(func.count()).select_from(WebhookEvent)).one() == 1
        assert session.exec(select(func.count()).select_from(Message)).one() == 1


@settings_hypothesis(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_mutation_of_a_signed_delivery_is_refused_and_stores_nothing(
    db: DbEngine, settings: Settings, data: st.DataObject
) -> None:
    make_tenant_once(db)
    raw = zendesk_body()
    headers = zendesk_headers(raw)
    part = data.draw(st.sampled_from(["body", "signature", "timestamp", "secret"]))
    if part == "body":
        i = data.draw(st.integers(0, len(raw) - 1))
        raw = raw[:i] + bytes([raw[i] ^ data.draw(st.integers(1, 255))]) + raw[i + 1 :]
    elif part == "signature":
        headers["x-zendesk-webhook-signature"] = data.draw(
            st.text(max_size=60).filter(lambda s: s != headers["x-zendesk-webhook-signature"])
        )
    elif part == "timestamp":
        shifted = datetime.now(UTC).timestamp() + data.draw(st.sampled_from([-1, 1])) * data.draw(
            st.integers(1, 10**6)
        )
        headers["x-zendesk-webhook-signature-timestamp"] = datetime.fromtimestamp(
            shifted, UTC
        ).strftime("%Y-%m-%dT%H:%M:%SZ")
    else:
        headers = zendesk_headers(
            raw,
            secret=data.draw(
                st.text(min_size=1, max_size=30).filter(lambda s: s not in SECRETS["acme/zendesk"])
            ),
        )
    outcome = deliver(db, settings, "zendesk", raw, headers)
    assert outcome.status_code == 401, (part, outcome.body)
    assert messages(db) == [] and events(db) == []


def make_tenant_once(db: DbEngine) -> None:
    from core.crud.tenants import get_tenant_by_slug

    with session_scope(db) as session:
        if get_tenant_by_slug(session=session, slug="acme") is not None:
            return
    make_tenant(db)


def test_comments_by_our_own_integration_user_are_never_ingested(
    db: DbEngine, settings: Settings
) -> None:
    make_tenant(db)
    ours = settings.model_copy(update={"connector_integration_users": {"acme/zendesk": ["844"]}})
    raw = zendesk_body("222", staff=True)  # author id 844 is our integration's Zendesk user
    outcome = deliver(db, ours, "zendesk", raw, zendesk_headers(raw))
    assert (outcome.status_code, outcome.body["status"]) == (200, "processed")
    assert messages(db) == []  # the delivery is recorded, its text is not
    assert len(events(db)) == 1
