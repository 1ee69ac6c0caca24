"""Deletion and redaction at a provider reach every copy we keep, and never come back.

Zendesk drives it end to end (its webhooks carry the events, its local fake serves the
backfill): a redacted comment and a permanently deleted ticket leave no text in the message
rows, the raw webhook bodies or the training files, taint the adapter versions trained on them,
leave an audit row without the text, and a later webhook, replay or backfill stores nothing of
them again. Then a person erased by provider id or email: CRM conversations are linked to
customers at ingestion, so `privacy forget` reaches them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import select
from typer.testing import CliRunner

from connectors.backfill import sync
from connectors.webhooks import Delivery, Outcome, receive, replay
from core.db import session_scope
from core.models import (
    AdapterLineage,
    AdapterVersion,
    Conversation,
    ErasureAudit,
    Message,
    Tenant,
    WebhookEvent,
    WebhookEventStatus,
)
from core.settings import Settings, get_settings
from finetune_loop.privacy import ErasureRequest, forget
from tests.conftest import free_port, make_settings
from tests.connectors.fake_zendesk import TOKEN, FakeZendesk, running
from tests.factories import all_rows, make_tenant

SECRET = "zd-secret"
EVENT = "zen:event-type:ticket."


@pytest.fixture
def world(tmp_path: Path, db_url: str, db: DbEngine) -> Iterator[tuple[Settings, FakeZendesk]]:
    port = free_port()
    settings = make_settings(
        tmp_path,
        db_url,
        connector_secrets={"acme/zendesk": [SECRET]},
        connector_credentials={
            "acme/zendesk": {"api_base": f"http://127.0.0.1:{port}", "token": TOKEN}
        },
    )
    make_tenant(db)
    fake = FakeZendesk(tickets=2)
    with running(fake.app, port):
        yield settings, fake


def deliver(db: DbEngine, settings: Settings, body: dict[str, object]) -> Outcome:
    raw = json.dumps(body).encode()
    ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    signature = base64.b64encode(
        hmac.new(SECRET.encode(), ts.encode() + raw, hashlib.sha256).digest()
    ).decode()
    headers = {
        "x-zendesk-webhook-signature": signature,
        "x-zendesk-webhook-signature-timestamp": ts,
    }
    return receive(db=db, settings=settings, delivery=Delivery("zendesk", "acme", raw, headers))


def event(kind: str, event_id: str, ticket: int, comment: dict[str, object] | None = None) -> dict:
    body: dict[str, object] = {
        "type": f"{EVENT}{kind}",
        "id": event_id,
        "time": "2025-01-08T14:25:30Z",
        "subject": f"zen:ticket:{ticket}",
        "detail": {"id": str(ticket), "requester_id": "1", "via": {"channel": "web"}},
    }
    if comment is not None:
        body["event"] = {"comment": comment}
    return body


def texts(db: DbEngine) -> list[str]:
    return [m.text for m in all_rows(db, Message)]


def train_on_everything(db: DbEngine, settings: Settings) -> tuple[Path, str]:
    """What a nightly run leaves behind: a training file with every example's message ids,
    and a version whose lineage names them."""
    directory = settings.training_dir("acme") / "run-1"
    directory.mkdir(parents=True)
    with session_scope(db) as session:
        rows = []
        for conversation in session.exec(select(Conversation)).all():
            messages = session.exec(
                select(Message).where(Message.conversation_id == conversation.id)
            ).all()
            rows.append(
                {
                    "conversation_id": conversation.id,
                    "customer_id": conversation.customer_id,
                    "message_ids": [m.id for m in messages],
                    "turns": [{"role": m.role, "text": m.text} for m in messages],
                }
            )
        version = AdapterVersion(
            tenant_id=conversation.tenant_id,
            name="acme-v1",
            base_model="smollm2",
            path="/nowhere",
            sha256="0" * 64,
            status="active",
        )
        session.add(version)
        session.flush()
        for row in rows:
            for message_id in row["message_ids"]:
                session.add(
                    AdapterLineage(
                        adapter_version_id=version.id,
                        message_id=message_id,
                        customer_id=row["customer_id"],
                    )
                )
    path = directory / "train.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path, "acme-v1"


def tainted(db: DbEngine, name: str) -> bool:
    with session_scope(db) as session:
        version = session.exec(select(AdapterVersion).where(AdapterVersion.name == name)).one()
        return version.tainted


def test_a_redacted_comment_and_a_deleted_ticket_leave_no_copy_and_never_come_back(
    db: DbEngine, world: tuple[Settings, FakeZendesk]
) -> None:
    settings, fake = world
    sync(db=db, settings=settings, provider="zendesk", tenant_slug="acme")
    redacted_text = "Where is order 1?"
    assert redacted_text in texts(db)
    # A webhook about ticket 5152 keeps its raw body, until the ticket is deleted.
    late = {
        "id": "777",
        "body": "One more thing about order 2",
        "is_public": True,
        "author": {"id": "1", "is_staff": False, "name": "Dana"},
    }
    assert deliver(db, settings, event("comment_added", "e-late", 5152, late)).status_code == 200
    training_file, version = train_on_everything(db, settings)
    assert redacted_text in training_file.read_text()

    redaction = event("comment_redacted", "e-redact", 5151, {"id": "9876543011"})
    assert deliver(db, settings, redaction).status_code == 200
    assert redacted_text not in texts(db)
    assert "Order 1 ships today." in texts(db)  # the rest of the ticket stays
    assert redacted_text not in training_file.read_text()
    assert tainted(db, version)

    deletion = event("permanently_deleted", "e-delete", 5152)
    assert deliver(db, settings, deletion).status_code == 200
    assert not [t for t in texts(db) if "order 2" in t.lower()]
    assert "order 2" not in training_file.read_text().lower()
    bodies = {e.event_id: e for e in all_rows(db, WebhookEvent)}
    assert bodies["e-late"].body == "" and bodies["e-late"].status == WebhookEventStatus.ERASED
    assert all("order 2" not in e.body.lower() for e in bodies.values())

    # What was erased stays erased: the same text by a new event, a replay, a full backfill.
    again = {
        "id": "9876543011",
        "body": redacted_text,
        "is_public": True,
        "author": {"id": "1", "is_staff": False},
    }
    assert deliver(db, settings, event("comment_added", "e-again", 5151, again)).status_code == 200
    assert deliver(db, settings, event("comment_added", "e-late2", 5152, late)).status_code == 200
    replay(db=db, settings=settings)
    sync(
        db=db,
        settings=settings,
        provider="zendesk",
        tenant_slug="acme",
        since=datetime(2020, 1, 1, tzinfo=UTC),
    )
    assert redacted_text not in texts(db)
    assert not [t for t in texts(db) if "order 2" in t.lower()]
    assert all(redacted_text not in e.body for e in all_rows(db, WebhookEvent))
    with session_scope(db) as session:
        assert (
            session.exec(select(Conversation).where(Conversation.external_id == "5152")).first()
            is None
        )

    audits = all_rows(db, ErasureAudit)
    assert [a.reason for a in audits] == [
        "messages redacted in zendesk",
        "conversation deleted in zendesk",
    ]
    assert audits[0].counts["messages"] == 1 and audits[0].counts["training_files"] == 1
    assert audits[0].counts["tainted_versions"] == [version]
    assert audits[1].actor == "zendesk webhook event e-delete"
    recorded = json.dumps([[a.subject, a.counts] for a in audits]).lower()
    assert "order 1" not in recorded and "order 2" not in recorded  # ids and counts, no text


def test_a_comment_made_private_becomes_an_internal_note(
    db: DbEngine, world: tuple[Settings, FakeZendesk]
) -> None:
    settings, _ = world
    sync(db=db, settings=settings, provider="zendesk", tenant_slug="acme")
    hidden = event("comment_made_private", "e-private", 5151, {"id": "9876543012"})
    assert deliver(db, settings, hidden).status_code == 200
    notes = {m.external_id: m.internal_note for m in all_rows(db, Message)}
    assert notes["9876543012"] is True and notes["9876543011"] is False


@pytest.mark.parametrize("by", ["external-id", "email"])
def test_forgetting_a_crm_person_reaches_their_tickets_and_keeps_them_out(
    db: DbEngine, world: tuple[Settings, FakeZendesk], by: str
) -> None:
    settings, _ = world
    sync(db=db, settings=settings, provider="zendesk", tenant_slug="acme")
    assert texts(db)
    training_file, version = train_on_everything(db, settings)
    request = (
        ErasureRequest(external_id="zendesk:1")
        if by == "external-id"
        else ErasureRequest(email="Dana@Example.com")
    )
    report = forget(
        db=db,
        settings=settings,
        tenant_slug="acme",
        request=request,
        actor="cli:dpo",
        retrain=False,
    )
    assert report.customers == 1 and report.conversations_deleted == 2
    assert texts(db) == [] and training_file.read_text() == ""
    assert report.tainted_versions == [version]
    sync(
        db=db,
        settings=settings,
        provider="zendesk",
        tenant_slug="acme",
        since=datetime(2020, 1, 1, tzinfo=UTC),
    )
    assert texts(db) == []  # the tombstone keeps a backfill from bringing them back
    audit = all_rows(db, ErasureAudit)[-1]
    assert audit.actor == "cli:dpo" and audit.reason == "privacy forget"
    assert "dana@example.com" not in json.dumps(audit.subject).lower()


def test_privacy_forget_cli_takes_an_email_or_an_external_id(
    db: DbEngine, db_url: str, tmp_path: Path, world: tuple[Settings, FakeZendesk]
) -> None:
    from supportloop.cli import app as cli

    settings, _ = world
    sync(db=db, settings=settings, provider="zendesk", tenant_slug="acme")
    env = {
        "SUPPORTLOOP_DATABASE_URL": db_url,
        "SUPPORTLOOP_VAR_DIR": str(settings.var_dir),
    }
    runner = CliRunner()
    get_settings.cache_clear()  # the CLI reads its settings from this environment
    both = runner.invoke(
        cli,
        ["privacy", "forget", "--tenant", "acme", "--email", "a@b.c", "--external-id", "x:1"],
        env=env,
    )
    assert both.exit_code != 0 and "exactly one" in both.output
    bad = runner.invoke(
        cli, ["privacy", "forget", "--tenant", "acme", "--external-id", "zendesk"], env=env
    )
    assert bad.exit_code != 0 and "PROVIDER:ID" in bad.output
    done = runner.invoke(
        cli,
        ["privacy", "forget", "--tenant", "acme", "--external-id", "zendesk:1", "--by", "dpo"],
        env=env,
    )
    assert done.exit_code == 0, done.output
    assert "1 matching people; deleted 2 conversations" in done.output
    assert texts(db) == []
    get_settings.cache_clear()


def test_an_imported_person_can_be_forgotten_by_email_and_a_reimport_brings_nothing_back(
    db: DbEngine, tmp_path: Path, world: tuple[Settings, FakeZendesk]
) -> None:
    from connectors.file_import import import_file

    settings, _ = world
    log = tmp_path / "log.jsonl"
    log.write_text(
        json.dumps(
            {
                "external_id": "imp-1",
                "customer": {"id": "crm-7", "email": "Kim@example.com", "name": "Kim"},
                "messages": [
                    {"role": "customer", "text": "Kim's order?", "sent_at": "2026-01-05T09:00:00Z"},
                    {"role": "agent", "text": "On its way.", "sent_at": "2026-01-05T09:01:00Z"},
                ],
            }
        )
        + "\n"
    )
    tenant_id = all_rows(db, Tenant)[0].id
    import_file(db=db, tenant_id=tenant_id, path=log)
    assert "Kim's order?" in texts(db)
    report = forget(
        db=db,
        settings=settings,
        tenant_slug="acme",
        request=ErasureRequest(email="kim@EXAMPLE.com"),
        actor="cli:dpo",
        retrain=False,
    )
    assert report.customers == 1 and report.conversations_deleted == 1
    import_file(db=db, tenant_id=tenant_id, path=log)
    assert texts(db) == []
