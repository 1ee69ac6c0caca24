"""Backfill for HubSpot, Freshdesk, Salesforce and Chatwoot against local fakes built from
crm-formats: every page walked, the provider's rate limiting waited out, a sync cut off halfway
resumed, later runs reading only what changed (less the overlap), and nothing stored twice."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import func, select

from connectors.backfill import sync
from connectors.backfill_spec import OVERLAP_S, Position
from connectors.errors import ProviderAPIError
from connectors.freshdesk import client as freshdesk_client
from core.db import session_scope
from core.models import Conversation, Message, Role, SyncCursor
from core.settings import Settings
from tests.conftest import free_port, make_settings
from tests.connectors import fake_chatwoot, fake_freshdesk, fake_hubspot, fake_salesforce
from tests.connectors.fake_zendesk import running
from tests.factories import make_tenant, messages_of


def configured(tmp_path: Path, db_url: str, provider: str, port: int, **api: str) -> Settings:
    return make_settings(
        tmp_path,
        db_url,
        connector_credentials={f"acme/{provider}": {"api_base": f"http://127.0.0.1:{port}", **api}},
    )


def counts(db: DbEngine) -> tuple[int, int]:
    with session_scope(db) as session:
        return (
            session.exec(select(func.count()).select_from(Conversation)).one(),
            session.exec(select(func.count()).select_from(Message)).one(),
        )


def transcript(db: DbEngine, external_id: str) -> list[tuple[str, str, bool]]:
    return [(m.role, m.text, m.internal_note) for m in messages_of(db, external_id)]


def stored_position(db: DbEngine) -> Position:
    with session_scope(db) as session:
        return Position.decode(session.exec(select(SyncCursor)).one().cursor, 0)


def test_hubspot_walks_threads_and_their_message_pages_then_only_newer_threads(
    db: DbEngine, db_url: str, tmp_path: Path
) -> None:
    make_tenant(db)
    port = free_port()
    settings = configured(tmp_path, db_url, "hubspot", port, token=fake_hubspot.TOKEN)
    fake = fake_hubspot.FakeHubSpot()
    fake.rate_limit_next = 1
    with running(fake.app, port):
        report = sync(db=db, settings=settings, provider="hubspot", tenant_slug="acme")
        assert (report.pages, report.conversations, report.messages_created) == (2, 2, 4)
        assert transcript(db, fake_hubspot.THREAD) == [
            (Role.CUSTOMER, "My order 4411 never arrived.", False),
            (Role.AGENT, "@Lee can you check the carrier?", True),
        ]  # the integration's (I-…) message is never ingested
        assert transcript(db, fake_hubspot.SECOND_THREAD)[1] == (
            Role.AGENT,
            "Yes, until it ships.",
            False,
        )
        again = sync(db=db, settings=settings, provider="hubspot", tenant_slug="acme")
    assert again.resumed and (again.conversations, again.messages_created) == (1, 0)
    # the second run asks from the newest thread's time less the overlap: only that thread
    assert fake.listings[-1]["latestMessageTimestampAfter"] == "2025-01-09T09:00:00Z"
    assert counts(db) == (2, 4)


def test_freshdesk_pages_by_number_and_a_cut_off_sync_resumes_at_its_page(
    db: DbEngine, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(freshdesk_client, "PER_PAGE", 1)
    make_tenant(db)
    port = free_port()
    settings = configured(tmp_path, db_url, "freshdesk", port, token=fake_freshdesk.TOKEN)
    fake = fake_freshdesk.FakeFreshdesk()
    fake.rate_limit_next, fake.fail_after_pages = 1, 1
    with running(fake.app, port), pytest.raises(ProviderAPIError):
        sync(db=db, settings=settings, provider="freshdesk", tenant_slug="acme")
    assert counts(db) == (1, 3)  # ticket 11: its description, a reply, a private note

    fake.fail_after_pages = None
    with running(fake.app, port):
        report = sync(db=db, settings=settings, provider="freshdesk", tenant_slug="acme")
    assert report.resumed and fake.list_requests[1:] == [
        ("1970-01-01T00:00:00Z", 2),  # the page it stopped at, in the same walk
        ("1970-01-01T00:00:00Z", 3),
    ]
    assert counts(db) == (2, 5)
    assert transcript(db, "11")[2] == (Role.AGENT, "Refund stuck in finance queue.", True)
    position = stored_position(db)
    assert position.page is None and position.since == position.mark - OVERLAP_S


def test_salesforce_finds_cases_changed_through_their_emails_or_comments(
    db: DbEngine, db_url: str, tmp_path: Path
) -> None:
    make_tenant(db)
    port = free_port()
    settings = configured(tmp_path, db_url, "salesforce", port, token=fake_salesforce.TOKEN)
    fake = fake_salesforce.FakeSalesforce()
    fake.over_limit_next = 1  # 403 REQUEST_LIMIT_EXCEEDED is backed off, not fatal
    with running(fake.app, port):
        report = sync(db=db, settings=settings, provider="salesforce", tenant_slug="acme")
        assert counts(db) == (2, 4) and report.messages_created == 4
        assert transcript(db, fake_salesforce.CASE_ID)[1] == (
            Role.AGENT,
            "Carrier lost the parcel",
            True,
        )
        # much later, only a new comment arrives: the case's own stamp does not move
        _, _, comments = fake.cases[fake_salesforce.CASE_ID]
        comments.append(
            {
                "Id": "00a5g000002",
                "CommentBody": "Refund approved",
                "IsPublished": True,
                "CreatedById": "0055g00000AgEnTAAB",
                "CreatedDate": "2025-02-01T10:00:00.000+0000",
            }
        )
        fake.queries.clear()
        again = sync(db=db, settings=settings, provider="salesforce", tenant_slug="acme")
    assert again.resumed and again.messages_created == 1
    assert transcript(db, fake_salesforce.CASE_ID)[-1] == (Role.AGENT, "Refund approved", False)
    assert all("SystemModstamp > 2025-01-09T08:55:00Z" in q for q in fake.queries if ">" in q)


def test_salesforce_comments_by_our_integration_user_are_skipped(
    db: DbEngine, db_url: str, tmp_path: Path
) -> None:
    make_tenant(db)
    port = free_port()
    settings = configured(
        tmp_path, db_url, "salesforce", port, token=fake_salesforce.TOKEN
    ).model_copy(update={"connector_integration_users": {"acme/salesforce": ["005OURS"]}})
    fake = fake_salesforce.FakeSalesforce()
    fake.cases[fake_salesforce.CASE_ID][2][0]["CreatedById"] = "005OURS"
    with running(fake.app, port):
        sync(db=db, settings=settings, provider="salesforce", tenant_slug="acme")
    assert "Carrier lost the parcel" not in [
        t for _, t, _ in transcript(db, fake_salesforce.CASE_ID)
    ]


def test_salesforce_a_case_deleted_or_a_comment_deleted_erases_our_copy_for_good(
    db: DbEngine, db_url: str, tmp_path: Path
) -> None:
    make_tenant(db)
    port = free_port()
    settings = configured(tmp_path, db_url, "salesforce", port, token=fake_salesforce.TOKEN)
    fake = fake_salesforce.FakeSalesforce()
    with running(fake.app, port):
        sync(db=db, settings=settings, provider="salesforce", tenant_slug="acme")
        assert counts(db) == (2, 4)
        case, _, comments = fake.cases[fake_salesforce.CASE_ID]
        comments[0].update(IsDeleted=True, SystemModstamp="2025-03-01T10:00:00.000+0000")
        case2 = fake.cases[fake_salesforce.CASE2_ID][0]
        case2.update(IsDeleted=True, SystemModstamp="2025-03-01T10:00:00.000+0000")
        sync(db=db, settings=settings, provider="salesforce", tenant_slug="acme")
        assert "Carrier lost the parcel" not in [
            t for _, t, _ in transcript(db, fake_salesforce.CASE_ID)
        ]
        with session_scope(db) as session:
            ids = session.exec(select(Conversation.external_id)).all()
        assert ids == [fake_salesforce.CASE_ID]
        # Restored in Salesforce later or not, a full re-read brings neither back.
        case2.pop("IsDeleted")
        comments[0].pop("IsDeleted")
        case2["SystemModstamp"] = "2025-04-01T10:00:00.000+0000"
        sync(
            db=db,
            settings=settings,
            provider="salesforce",
            tenant_slug="acme",
            since=datetime(2020, 1, 1, tzinfo=UTC),
        )
    assert counts(db) == (1, 2)


def test_chatwoot_reads_every_message_page_and_later_only_active_conversations(
    db: DbEngine, db_url: str, tmp_path: Path
) -> None:
    make_tenant(db)
    port = free_port()
    settings = configured(
        tmp_path,
        db_url,
        "chatwoot",
        port,
        token=fake_chatwoot.TOKEN,
        account_id=fake_chatwoot.ACCOUNT,
    )
    fake = fake_chatwoot.FakeChatwoot()
    with running(fake.app, port):
        report = sync(db=db, settings=settings, provider="chatwoot", tenant_slug="acme")
        assert (report.conversations, report.messages_created) == (3, 7)
        assert transcript(db, "3:101") == [
            (Role.CUSTOMER, "Hi, my card was charged twice", False),
            (Role.AGENT, "Sorry! Refunding the duplicate now.", False),
            (Role.AGENT, "checked stripe: duplicate", True),
            (Role.SYSTEM, "Conversation was marked resolved by Sam", False),
        ]  # the agent_bot message is not ours to learn from
        fake.conversations[102].append(
            fake_chatwoot._message(9102, 1, "Yes, in 3-5 days.", 1736370000)
        )
        fake.message_requests.clear()
        again = sync(db=db, settings=settings, provider="chatwoot", tenant_slug="acme")
    # 101 is untouched; 103 changed within the overlap window before the mark, so it is re-read
    assert again.messages_created == 1 and set(fake.message_requests) == {102, 103}
    assert counts(db) == (3, 8)
