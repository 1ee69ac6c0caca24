"""HubSpot: batched v3 webhooks carrying ids only; messages come from the (fake, local) API."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import col, select

from connectors.webhooks import Delivery, receive
from core.db import session_scope
from core.models import Message, Role, WebhookEvent
from tests.conftest import free_port, make_settings
from tests.connectors.fake_hubspot import THREAD, TOKEN, FakeHubSpot
from tests.connectors.fake_zendesk import running
from tests.factories import make_tenant

SECRET = "hs-client-secret"
URL = "https://ingest.example.com/v1/webhooks/hubspot/acme"


def event(n: int, message_id: str, kind: str = "conversation.newMessage") -> dict[str, object]:
    return {
        "eventId": 1714567890 + n,
        "subscriptionId": 2456789,
        "portalId": 47354717,
        "appId": 3456789,
        "occurredAt": 1736346329000,
        "subscriptionType": kind,
        "attemptNumber": 0,
        "objectId": int(THREAD),
        "messageId": message_id,
        "messageType": "MESSAGE",
    }


def signed(
    raw: bytes, *, method: str = "POST", url: str = URL, ts_ms: int | None = None
) -> dict[str, str]:
    ts = str(ts_ms or int(time.time() * 1000))
    mac = hmac.new(
        SECRET.encode(), method.encode() + url.encode() + raw + ts.encode(), hashlib.sha256
    )
    return {
        "x-hubspot-signature-v3": base64.b64encode(mac.digest()).decode(),
        "x-hubspot-request-timestamp": ts,
    }


def test_a_batch_is_fetched_message_by_message_and_stored_once(
    db: DbEngine, db_url: str, tmp_path: Path
) -> None:
    make_tenant(db)
    port = free_port()
    settings = make_settings(
        tmp_path,
        db_url,
        connector_secrets={"acme/hubspot": [SECRET]},
        connector_credentials={
            "acme/hubspot": {"api_base": f"http://127.0.0.1:{port}", "token": TOKEN}
        },
    )
    raw = json.dumps(
        [
            event(0, "f1a2b3c4d5e6478899aabbccddeeff00"),
            event(1, "0aa1bb2cc3dd4ee5ff6677889900aabb"),
            event(2, "bot0000000000000000000000000000"),
            event(3, "", kind="conversation.propertyChange"),
        ]
    ).encode()
    with running(FakeHubSpot().app, port):
        outcome = receive(
            db=db,
            settings=settings,
            delivery=Delivery("hubspot", "acme", raw, signed(raw), url=URL),
        )
        again = receive(
            db=db,
            settings=settings,
            delivery=Delivery("hubspot", "acme", raw, signed(raw), url=URL),
        )
    assert outcome.status_code == 200
    assert [e["status"] for e in outcome.body["events"]] == ["processed"] * 4
    assert [e["status"] for e in again.body["events"]] == ["duplicate"] * 4
    with session_scope(db) as session:
        stored = session.exec(select(Message).order_by(col(Message.sent_at))).all()
        assert [(m.role, m.text, m.internal_note) for m in stored] == [
            (Role.CUSTOMER, "My order 4411 never arrived.", False),
            (Role.AGENT, "@Lee can you check the carrier?", True),
        ]  # the integration's own message (I-…) is not ingested
        assert len(session.exec(select(WebhookEvent)).all()) == 4


def test_the_signature_covers_method_url_and_time(
    db: DbEngine, db_url: str, tmp_path: Path
) -> None:
    make_tenant(db)
    settings = make_settings(tmp_path, db_url, connector_secrets={"acme/hubspot": [SECRET]})
    raw = json.dumps([event(0, "x")]).encode()
    for headers, url in (
        (signed(raw, url=URL + "?x=1"), URL),
        (signed(raw, method="PUT"), URL),
        (signed(raw, ts_ms=int(time.time() * 1000) - 301_000), URL),
    ):
        assert (
            receive(
                db=db,
                settings=settings,
                delivery=Delivery("hubspot", "acme", raw, headers, url=url),
            ).status_code
            == 401
        )
    not_a_batch = b'{"eventId": 1}'
    outcome = receive(
        db=db,
        settings=settings,
        delivery=Delivery("hubspot", "acme", not_a_batch, signed(not_a_batch), url=URL),
    )
    assert outcome.status_code == 400 and "JSON array" in outcome.body["detail"]
