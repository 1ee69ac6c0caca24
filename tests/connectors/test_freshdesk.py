"""Freshdesk: unsigned webhooks authenticated by a shared token, ticket re-fetched from the API."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import col, select

from connectors.webhooks import Delivery, receive
from core.db import session_scope
from core.models import Message, Role, WebhookEvent
from tests.conftest import free_port, make_settings
from tests.connectors.fake_freshdesk import TOKEN, FakeFreshdesk
from tests.connectors.fake_zendesk import running
from tests.factories import make_tenant

BODY = json.dumps(
    {"freshdesk_webhook": {"ticket_id": "11", "triggered_event": "{note_type:public}"}}
).encode()


def test_a_webhook_with_the_shared_token_fetches_and_stores_the_ticket(
    db: DbEngine, db_url: str, tmp_path: Path
) -> None:
    make_tenant(db)
    port = free_port()
    settings = make_settings(
        tmp_path,
        db_url,
        connector_secrets={"acme/freshdesk": ["fd-token-new", "fd-token-old"]},
        connector_credentials={
            "acme/freshdesk": {"api_base": f"http://127.0.0.1:{port}", "token": TOKEN}
        },
    )
    token = {"x-supportloop-token": "fd-token-old"}
    with running(FakeFreshdesk().app, port):
        first = receive(
            db=db, settings=settings, delivery=Delivery("freshdesk", "acme", BODY, token)
        )
        again = receive(
            db=db, settings=settings, delivery=Delivery("freshdesk", "acme", BODY, token)
        )
    assert (first.status_code, first.body["status"]) == (200, "processed")
    assert again.body["status"] == "duplicate"
    with session_scope(db) as session:
        stored = session.exec(select(Message).order_by(col(Message.sent_at))).all()
        assert [(m.role, m.text, m.internal_note) for m in stored] == [
            (Role.CUSTOMER, "I was promised a refund two weeks ago.", False),
            (Role.CUSTOMER, "Any update?", False),  # the quoted history is cut
            (Role.AGENT, "Refund stuck in finance queue.", True),
        ]


def test_a_missing_or_wrong_token_is_refused_and_stores_nothing(
    db: DbEngine, db_url: str, tmp_path: Path
) -> None:
    make_tenant(db)
    settings = make_settings(tmp_path, db_url, connector_secrets={"acme/freshdesk": ["fd-token"]})
    for headers in ({}, {"x-supportloop-token": "guess"}):
        outcome = receive(
            db=db, settings=settings, delivery=Delivery("freshdesk", "acme", BODY, headers)
        )
        assert outcome.status_code == 401
    bad = receive(
        db=db,
        settings=settings,
        delivery=Delivery(
            "freshdesk", "acme", b'{"freshdesk_webhook": {}}', {"x-supportloop-token": "fd-token"}
        ),
    )
    assert bad.status_code == 400 and "ticket_id" in bad.body["detail"]
    with session_scope(db) as session:
        assert session.exec(select(Message)).all() == []
        assert [e.status for e in session.exec(select(WebhookEvent)).all()] == ["dead"]
