"""Backfill from a (fake, local) Zendesk API: pagination, 429 + Retry-After, resume after the
API goes away halfway, and overlap with webhook deliveries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import func, select
from typer.testing import CliRunner

from connectors.backfill import sync
from connectors.errors import ProviderAPIError, SyncError
from connectors.webhooks import Delivery, receive
from core.db import session_scope
from core.models import Conversation, Message, Role, SyncCursor
from core.settings import Settings
from supportloop.cli import app as cli
from tests.conftest import free_port, make_settings
from tests.connectors.fake_zendesk import TOKEN, FakeZendesk, running
from tests.factories import make_tenant


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def settings(tmp_path: Path, db_url: str, port: int) -> Settings:
    return make_settings(
        tmp_path,
        db_url,
        connector_secrets={"acme/zendesk": ["zd-secret"]},
        connector_credentials={
            "acme/zendesk": {"api_base": f"http://127.0.0.1:{port}", "token": TOKEN}
        },
    )


def counts(db: DbEngine) -> tuple[int, int]:
    with session_scope(db) as session:
        return (
            session.exec(select(func.count()).select_from(Conversation)).one(),
            session.exec(select(func.count()).select_from(Message)).one(),
        )


def test_sync_walks_every_page_and_honours_retry_after(
    db: DbEngine, settings: Settings, port: int
) -> None:
    make_tenant(db)
    fake = FakeZendesk(tickets=5)
    fake.rate_limit_next = 1
    with running(fake.app, port):
        report = sync(db=db, settings=settings, provider="zendesk", tenant_slug="acme")
    assert (report.pages, report.conversations, report.messages_created) == (3, 5, 15)
    assert fake.page_requests == ["start:0", "2", "4"]  # the 429 was waited out, not skipped
    assert counts(db) == (5, 15)
    with session_scope(db) as session:
        note = session.exec(select(Message).where(Message.text == "VIP customer")).first()
        assert note.internal_note and note.role == Role.AGENT
        assert session.exec(select(SyncCursor)).one().cursor == "5"


def test_a_sync_cut_off_halfway_resumes_where_it_stopped(
    db: DbEngine, settings: Settings, port: int
) -> None:
    make_tenant(db)
    fake = FakeZendesk(tickets=5)
    fake.fail_after_pages = 2
    with running(fake.app, port), pytest.raises(ProviderAPIError):
        sync(db=db, settings=settings, provider="zendesk", tenant_slug="acme")
    assert counts(db) == (4, 12)  # two pages stored, with their cursor

    fake.fail_after_pages = None
    fake.page_requests.clear()
    with running(fake.app, port):  # the API is back (a new server on the same port)
        report = sync(db=db, settings=settings, provider="zendesk", tenant_slug="acme")
    assert report.resumed and fake.page_requests == ["4"]
    assert counts(db) == (5, 15)

    fake.page_requests.clear()
    with running(fake.app, port):
        again = sync(
            db=db,
            settings=settings,
            provider="zendesk",
            tenant_slug="acme",
            since=datetime(2025, 1, 1, tzinfo=UTC),
        )
    assert fake.page_requests[0].startswith("start:") and again.messages_created == 0
    assert counts(db) == (5, 15)


def test_backfill_and_webhook_overlap_without_duplicates(
    db: DbEngine, settings: Settings, port: int
) -> None:
    make_tenant(db)
    comment = {
        "id": "9876543011",
        "body": "Where is order 1?",
        "is_public": True,
        "author": {"id": "1", "is_staff": False, "name": "Dana Customer"},
    }
    raw = json.dumps(
        {
            "type": "zen:event-type:ticket.comment_added",
            "id": "evt-1",
            "time": "2025-01-01T10:00:00Z",
            "detail": {"id": "5151", "subject": "Order problem 1", "via": {"channel": "web"}},
            "event": {"comment": comment},
        }
    ).encode()
    ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    signature = base64.b64encode(
        hmac.new(b"zd-secret", ts.encode() + raw, hashlib.sha256).digest()
    ).decode()
    headers = {
        "x-zendesk-webhook-signature": signature,
        "x-zendesk-webhook-signature-timestamp": ts,
    }
    assert (
        receive(
            db=db, settings=settings, delivery=Delivery("zendesk", "acme", raw, headers)
        ).status_code
        == 200
    )
    with running(FakeZendesk(tickets=1).app, port):
        report = sync(db=db, settings=settings, provider="zendesk", tenant_slug="acme")
    assert (report.messages_created, report.messages_skipped) == (2, 1)
    assert counts(db) == (1, 3)


def test_sync_refuses_unknown_providers_and_missing_credentials(
    db: DbEngine, settings: Settings
) -> None:
    make_tenant(db)
    with pytest.raises(SyncError, match="not available"):
        sync(db=db, settings=settings, provider="myspace", tenant_slug="acme")
    with pytest.raises(SyncError, match="no zendesk API credentials"):
        sync(
            db=db,
            settings=settings.model_copy(update={"connector_credentials": {}}),
            provider="zendesk",
            tenant_slug="acme",
        )


def test_cli_sync_reports_progress_and_resumes(tmp_path: Path, port: int) -> None:
    from core.settings import get_settings

    env = {
        "SUPPORTLOOP_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "SUPPORTLOOP_CONNECTOR_CREDENTIALS": json.dumps(
            {"acme/zendesk": {"api_base": f"http://127.0.0.1:{port}", "token": TOKEN}}
        ),
    }
    runner = CliRunner()
    fake = FakeZendesk(tickets=3)
    get_settings.cache_clear()
    try:
        assert runner.invoke(cli, ["tenant", "create", "acme"], env=env).exit_code == 0
        get_settings.cache_clear()
        down = runner.invoke(cli, ["connectors", "sync", "zendesk", "--tenant", "acme"], env=env)
        assert down.exit_code == 1 and "resume" in down.output
        get_settings.cache_clear()
        with running(fake.app, port):
            result = runner.invoke(
                cli, ["connectors", "sync", "zendesk", "--tenant", "acme"], env=env
            )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "2 pages, 3 conversations, 9 new messages" in result.output


def test_backfill_skips_comments_by_our_own_integration_user(
    db: DbEngine, settings: Settings, port: int
) -> None:
    make_tenant(db)
    ours = settings.model_copy(update={"connector_integration_users": {"acme/zendesk": ["2"]}})
    with running(FakeZendesk(tickets=1).app, port):
        report = sync(db=db, settings=ours, provider="zendesk", tenant_slug="acme")
    assert report.messages_created == 1  # only the customer's; user 2's replies and note are ours
    with session_scope(db) as session:
        assert [m.role for m in session.exec(select(Message)).all()] == [Role.CUSTOMER]
