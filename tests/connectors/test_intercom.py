"""Intercom: the notification is a doorbell; the transcript comes from the (fake, local) API.
Failures of that API are retried with backoff, dead-lettered, and replayable."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import col, select

from connectors.webhooks import Delivery, receive, replay, retry_due
from core.db import session_scope
from core.models import Conversation, Message, Role, WebhookEvent, utcnow
from core.settings import Settings
from tests.conftest import free_port, make_settings
from tests.connectors.fake_intercom import TOKEN, FakeIntercom, running_fake_intercom
from tests.factories import make_tenant

SECRET = "ic_test_client_secret"
NOTIFICATION = {
    "type": "notification_event",
    "app_id": "abc12345",
    "id": "notif_7f6c1d2e-0000-4000-8000-000000000001",
    "topic": "conversation.user.replied",
    "created_at": 1736346330,
    "data": {
        "type": "notification_event_data",
        "item": {
            "type": "conversation",
            "id": "215472580981234",
            "conversation_parts": {
                "type": "conversation_part.list",
                "conversation_parts": [
                    {
                        "type": "conversation_part",
                        "id": "28463517",
                        "part_type": "comment",
                        "body": "<p>Still broken after the update.</p>",
                        "created_at": 1736346329,
                        "author": {"type": "user", "id": "66f0c0ffee"},
                    }
                ],
                "total_count": 1,
            },
        },
    },
}


@pytest.fixture
def settings_and_fake(tmp_path: Path, db_url: str) -> Iterator[tuple[Settings, FakeIntercom]]:
    port = free_port()
    with running_fake_intercom(port) as fake:
        settings = make_settings(
            tmp_path,
            db_url,
            connector_secrets={"acme/intercom": [SECRET]},
            connector_credentials={
                "acme/intercom": {"api_base": f"http://127.0.0.1:{port}", "token": TOKEN}
            },
            webhook_max_attempts=3,
            webhook_retry_base_s=60,
        )
        yield settings, fake


def notify(  # noqa: ANN201
    db: DbEngine, settings: Settings, body: dict[str, object] = NOTIFICATION, age_s: float = 0
):
    raw = json.dumps({**body, "created_at": int(time.time() - age_s)}).encode()
    signature = "sha1=" + hmac.new(SECRET.encode(), raw, hashlib.sha1).hexdigest()
    return receive(
        db=db,
        settings=settings,
        delivery=Delivery("intercom", "acme", raw, {"x-hub-signature": signature}),
    )


def transcript(db: DbEngine) -> list[tuple[str, str, bool]]:
    with session_scope(db) as session:
        rows = session.exec(select(Message).order_by(col(Message.sent_at))).all()
        return [(m.role, m.text, m.internal_note) for m in rows]


def event(db: DbEngine) -> WebhookEvent:
    with session_scope(db) as session:
        return session.exec(select(WebhookEvent)).one()


def test_a_notification_fetches_and_stores_the_whole_transcript(
    db: DbEngine, settings_and_fake: tuple[Settings, FakeIntercom]
) -> None:
    settings, fake = settings_and_fake
    make_tenant(db)
    outcome = notify(db, settings)
    assert (outcome.status_code, outcome.body["status"]) == (200, "processed")
    assert transcript(db) == [
        (Role.CUSTOMER, "The app crashes when I open settings.", False),
        (Role.AGENT, "Sorry about that! Which version are you on?", False),
        (Role.AGENT, "Known crash, see JIRA-12", True),  # an internal note, kept but flagged
        (Role.CUSTOMER, "Still broken after the update.", False),
    ]  # the bot's parts are skipped
    assert notify(db, settings).body["status"] == "duplicate"
    assert fake.calls == 1  # a duplicate does not even call the API


def test_a_notification_older_than_the_window_is_refused_like_a_replay(
    db: DbEngine, settings_and_fake: tuple[Settings, FakeIntercom]
) -> None:
    settings, fake = settings_and_fake
    make_tenant(db)
    stale = notify(db, settings, age_s=settings.webhook_tolerance_s + 60)
    assert stale.status_code == 401 and "tolerance" in stale.body["detail"]
    assert notify(db, settings, age_s=60).status_code == 200  # a prompt retry is fine


@pytest.mark.parametrize("created_at", [None, "1736346330", [1736346330], True])
def test_a_signed_notification_whose_time_is_not_a_number_is_malformed_not_forged(
    db: DbEngine, settings_and_fake: tuple[Settings, FakeIntercom], created_at: object
) -> None:
    settings, fake = settings_and_fake
    make_tenant(db)
    body = {k: v for k, v in NOTIFICATION.items() if k != "created_at"}
    if created_at is not None:
        body["created_at"] = created_at
    raw = json.dumps(body).encode()
    signature = "sha1=" + hmac.new(SECRET.encode(), raw, hashlib.sha1).hexdigest()
    outcome = receive(
        db=db,
        settings=settings,
        delivery=Delivery("intercom", "acme", raw, {"x-hub-signature": signature}),
    )
    assert outcome.status_code == 400 and "created_at" in outcome.body["detail"]
    dead = event(db)
    assert dead.status == "dead" and "created_at" in (dead.last_error or "")
    assert transcript(db) == [] and fake.calls == 0


def test_api_failures_are_retried_with_backoff_then_dead_lettered_then_replayed(
    db: DbEngine, settings_and_fake: tuple[Settings, FakeIntercom]
) -> None:
    settings, fake = settings_and_fake
    make_tenant(db)
    fake.up = False
    outcome = notify(db, settings)
    assert (outcome.status_code, outcome.body["status"]) == (202, "queued")  # kept durably
    first = event(db)
    assert (first.status, first.attempts) == ("failed", 1) and "503" in first.last_error
    assert transcript(db) == []

    assert retry_due(db=db, settings=settings) == 0  # not due yet: backoff
    assert event(db).attempts == 1
    later = utcnow() + timedelta(hours=1)
    assert retry_due(db=db, settings=settings, now=later) == 0
    second = event(db)
    assert (second.status, second.attempts) == ("failed", 2)
    assert second.next_attempt_at - later > timedelta(seconds=30)  # the delay grew
    retry_due(db=db, settings=settings, now=later + timedelta(hours=2))
    assert (event(db).status, event(db).attempts) == ("dead", 3)

    fake.up = True
    assert replay(db=db, settings=settings) == (1, 0)
    assert event(db).status == "processed" and len(transcript(db)) == 4
    assert replay(db=db, settings=settings) == (0, 0)  # twice in a row changes nothing
    assert len(transcript(db)) == 4


def test_a_failed_event_succeeds_on_its_next_retry(
    db: DbEngine, settings_and_fake: tuple[Settings, FakeIntercom]
) -> None:
    settings, fake = settings_and_fake
    make_tenant(db)
    fake.up = False
    notify(db, settings)
    fake.up = True
    assert retry_due(db=db, settings=settings, now=utcnow() + timedelta(hours=1)) == 1
    assert event(db).status == "processed" and len(transcript(db)) == 4


def test_backfill_pages_through_search_and_later_runs_start_from_the_high_water_mark(
    db: DbEngine, settings_and_fake: tuple[Settings, FakeIntercom]
) -> None:
    from connectors.backfill import sync
    from connectors.backfill_spec import OVERLAP_S

    settings, fake = settings_and_fake
    make_tenant(db)
    report = sync(db=db, settings=settings, provider="intercom", tenant_slug="acme")
    assert (report.pages, report.conversations, report.messages_created) == (2, 2, 8)
    again = sync(db=db, settings=settings, provider="intercom", tenant_slug="acme")
    assert again.resumed and again.messages_created == 0
    # only what changed since the newest update seen, less the overlap window
    assert fake.searches[-1]["query"]["value"] == 1736350000 - OVERLAP_S
    assert len(transcript(db)) == 8


def test_redaction_and_deletion_in_intercom_reach_every_copy_and_stay_erased(
    db: DbEngine, settings_and_fake: tuple[Settings, FakeIntercom]
) -> None:
    settings, fake = settings_and_fake
    make_tenant(db)
    assert notify(db, settings).status_code == 200
    assert ("customer", "Still broken after the update.", False) in transcript(db)
    fake.up = False  # a later notification waits for its retry with its raw body
    queued = {**NOTIFICATION, "id": "notif_queued"}
    assert notify(db, settings, queued).status_code == 202
    fake.up = True

    parts = fake.conversations["215472580981234"]["conversation_parts"]["conversation_parts"]
    parts[-1].update(body="", redacted=True)
    redaction = {
        **NOTIFICATION,
        "id": "notif_redact",
        "topic": "conversation_part.redacted",
        "data": {
            "type": "notification_event_data",
            "item": {
                "type": "conversation",
                "id": "215472580981234",
                "conversation_parts": {
                    "type": "conversation_part.list",
                    "conversation_parts": [{"type": "conversation_part", "id": "28463517"}],
                },
            },
        },
    }
    assert notify(db, settings, redaction).status_code == 200
    assert all("Still broken" not in text for _, text, _ in transcript(db))
    assert ("agent", "Sorry about that! Which version are you on?", False) in transcript(db)
    with session_scope(db) as session:
        bodies = [e.body for e in session.exec(select(WebhookEvent)).all()]
    assert all("Still broken" not in body for body in bodies)  # queued body wiped too

    deletion = {
        **NOTIFICATION,
        "id": "notif_delete",
        "topic": "conversation.deleted",
        "data": {
            "type": "notification_event_data",
            "item": {"type": "conversation", "id": "215472580981234"},
        },
    }
    assert notify(db, settings, deletion).status_code == 200
    assert transcript(db) == []
    # The deleted conversation stays deleted: a new notification, replays, a backfill.
    assert notify(db, settings, {**NOTIFICATION, "id": "notif_after"}).status_code == 200
    replay(db=db, settings=settings)
    retry_due(db=db, settings=settings, now=utcnow() + timedelta(days=1))
    from connectors.backfill import sync

    sync(db=db, settings=settings, provider="intercom", tenant_slug="acme")
    with session_scope(db) as session:  # (the other conversation syncs as usual)
        kept = session.exec(select(Conversation.external_id)).all()
    assert "215472580981234" not in kept and kept


def test_a_conversation_the_api_says_is_gone_is_dead_at_once_not_retried(
    db: DbEngine, settings_and_fake: tuple[Settings, FakeIntercom]
) -> None:
    settings, fake = settings_and_fake
    make_tenant(db)
    gone = {
        **NOTIFICATION,
        "data": {
            "type": "notification_event_data",
            "item": {"type": "conversation", "id": "999"},
        },
    }
    outcome = notify(db, settings, gone)
    assert outcome.status_code == 200 and outcome.body["status"] == "dead"
    dead = event(db)
    assert dead.status == "dead" and "404" in (dead.last_error or "")
    assert dead.next_attempt_at is None and fake.calls == 1
