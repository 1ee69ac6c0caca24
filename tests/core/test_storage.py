"""Storage behaves identically on SQLite and PostgreSQL (each test runs on both)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine as DbEngine
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel, select

from core.crud.conversations import (
    append_message,
    get_conversation,
    get_conversation_by_token,
    list_conversations,
    list_messages,
    start_conversation,
)
from core.crud.tenants import TenantExistsError, authenticate_api_key, create_tenant
from core.db import create_db_engine, read_scope, session_scope
from core.migrate import downgrade_database, upgrade_database
from core.models import ApiKey, Conversation, ConversationStatus, Message, Role, Tenant
from tests.factories import make_conversation, make_tenant


def test_migrations_produce_exactly_the_models(db: DbEngine) -> None:
    with db.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []


def test_migrations_downgrade_to_empty_and_upgrade_again(db_url: str) -> None:
    engine = create_db_engine(db_url)
    upgrade_database(engine)
    downgrade_database(engine)
    assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade_database(engine)
    assert {"tenant", "message", "adapterversion", "webhookevent"} <= set(
        sa.inspect(engine).get_table_names()
    )
    engine.dispose()


def test_sqlite_is_durable_by_configuration(tmp_path) -> None:  # noqa: ANN001
    engine = create_db_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    engine.dispose()


def test_sequence_numbers_are_unique_per_conversation(db: DbEngine) -> None:
    tenant, _ = make_tenant(db)
    conversation, _ = make_conversation(db, tenant)
    with pytest.raises(IntegrityError), session_scope(db) as session:
        for _ in range(2):
            session.add(
                Message(
                    tenant_id=tenant.id,
                    conversation_id=conversation.id,
                    seq=1,
                    role=Role.CUSTOMER,
                    text="hi",
                )
            )
            session.flush()


def test_source_external_id_is_unique_per_tenant_only(db: DbEngine) -> None:
    acme, _ = make_tenant(db, "acme")
    other, _ = make_tenant(db, "other")
    acme_conv, _ = make_conversation(db, acme)
    other_conv, _ = make_conversation(db, other)

    def add(tenant: Tenant, conversation: Conversation, seq: int) -> None:
        with session_scope(db) as session:
            session.add(
                Message(
                    tenant_id=tenant.id,
                    conversation_id=conversation.id,
                    seq=seq,
                    role=Role.AGENT,
                    text="x",
                    source="zendesk",
                    external_id="comment-1",
                )
            )

    add(acme, acme_conv, 1)
    add(other, other_conv, 1)  # same external id, other tenant: fine
    with pytest.raises(IntegrityError):
        add(acme, acme_conv, 2)


def test_concurrent_appends_get_consecutive_distinct_sequence_numbers(db: DbEngine) -> None:
    tenant, _ = make_tenant(db)
    conversation, _ = make_conversation(db, tenant)

    def append(i: int) -> int:
        with session_scope(db) as session:
            conv = get_conversation(
                session=session, tenant_id=tenant.id, conversation_id=conversation.id
            )
            message, _ = append_message(
                session=session, conversation=conv, role=Role.CUSTOMER, text=f"m{i}"
            )
            return message.seq

    with ThreadPoolExecutor(max_workers=8) as pool:
        seqs = list(pool.map(append, range(40)))
    assert sorted(seqs) == list(range(1, 41))
    with session_scope(db) as session:
        assert session.get(Conversation, conversation.id).last_seq == 40


def test_a_client_id_sent_concurrently_is_stored_once(db: DbEngine) -> None:
    tenant, _ = make_tenant(db)
    conversation, _ = make_conversation(db, tenant)

    def append(_: int) -> tuple[int, bool]:
        with session_scope(db) as session:
            conv = get_conversation(
                session=session, tenant_id=tenant.id, conversation_id=conversation.id
            )
            message, created = append_message(
                session=session,
                conversation=conv,
                role=Role.CUSTOMER,
                text="same",
                client_id="client-1",
            )
            return message.seq, created

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(append, range(16)))
    assert {seq for seq, _ in results} == {1}
    assert sum(created for _, created in results) == 1
    with session_scope(db) as session:
        assert len(list_messages(session=session, conversation_id=conversation.id)) == 1
        # No sequence number was burnt by the losers.
        assert session.get(Conversation, conversation.id).last_seq == 1


def test_foreign_keys_are_enforced(db: DbEngine) -> None:
    tenant, _ = make_tenant(db)
    with pytest.raises(IntegrityError), session_scope(db) as session:
        session.add(
            Message(tenant_id=tenant.id, conversation_id=999_999, seq=1, role="customer", text="x")
        )


def test_deleting_a_tenant_deletes_its_data(db: DbEngine) -> None:
    tenant, _ = make_tenant(db)
    conversation, _ = make_conversation(db, tenant)
    with session_scope(db) as session:
        conv = session.get(Conversation, conversation.id)
        append_message(session=session, conversation=conv, role=Role.CUSTOMER, text="hello")
    with session_scope(db) as session:
        session.delete(session.get(Tenant, tenant.id))
    with session_scope(db) as session:
        assert session.exec(select(Message)).all() == []
        assert session.exec(select(Conversation)).all() == []
        assert session.exec(select(ApiKey)).all() == []


def test_timestamps_round_trip_as_aware_utc(db: DbEngine) -> None:
    tenant, _ = make_tenant(db)
    conversation, _ = make_conversation(db, tenant)
    sent = datetime(2026, 3, 1, 12, 30, tzinfo=timezone(timedelta(hours=2)))
    with session_scope(db) as session:
        conv = session.get(Conversation, conversation.id)
        message, _ = append_message(
            session=session, conversation=conv, role=Role.CUSTOMER, text="x", sent_at=sent
        )
    with session_scope(db) as session:
        stored = session.get(Message, message.id)
        assert stored.sent_at == sent
        assert stored.sent_at.tzinfo == UTC
        assert stored.sent_at.hour == 10


def test_csat_outside_one_to_five_is_refused(db: DbEngine) -> None:
    tenant, _ = make_tenant(db)
    conversation, _ = make_conversation(db, tenant)
    with pytest.raises(IntegrityError), session_scope(db) as session:
        conv = session.get(Conversation, conversation.id)
        conv.csat = 6
        session.add(conv)


def test_api_keys_are_stored_hashed_and_authenticate(db: DbEngine) -> None:
    tenant, key = make_tenant(db)
    with session_scope(db) as session:
        stored = session.exec(select(ApiKey)).one()
        assert key not in stored.key_hash
        assert authenticate_api_key(session=session, key=key).id == tenant.id
        assert authenticate_api_key(session=session, key=key + "x") is None
        stored.revoked_at = datetime.now(UTC)
        session.add(stored)
        session.flush()
        assert authenticate_api_key(session=session, key=key) is None


def test_duplicate_or_invalid_tenant_slugs_are_refused(db: DbEngine) -> None:
    make_tenant(db, "acme")
    with pytest.raises(TenantExistsError), session_scope(db) as session:
        create_tenant(session=session, slug="acme")
    with pytest.raises(ValueError, match="invalid tenant slug"), session_scope(db) as session:
        create_tenant(session=session, slug="Not A Slug")


def test_conversation_tokens_resolve_only_within_their_tenant(db: DbEngine) -> None:
    acme, _ = make_tenant(db, "acme")
    other, _ = make_tenant(db, "other")
    conversation, token = make_conversation(db, acme)
    with session_scope(db) as session:
        assert get_conversation_by_token(session=session, tenant_id=acme.id, token=token).id == (
            conversation.id
        )
        assert get_conversation_by_token(session=session, tenant_id=other.id, token=token) is None
        assert (
            get_conversation(session=session, tenant_id=other.id, conversation_id=conversation.id)
            is None
        )


def test_conversations_page_newest_first_and_filter_by_status(db: DbEngine) -> None:
    tenant, _ = make_tenant(db)
    ids = [make_conversation(db, tenant)[0].id for _ in range(5)]
    with session_scope(db) as session:
        resolved = session.get(Conversation, ids[1])
        resolved.status = ConversationStatus.RESOLVED
        session.add(resolved)
    with session_scope(db) as session:
        first = list_conversations(session=session, tenant_id=tenant.id, limit=2)
        assert [c.id for c in first] == [ids[4], ids[3]]
        rest = list_conversations(session=session, tenant_id=tenant.id, before_id=ids[3])
        assert [c.id for c in rest] == [ids[2], ids[1], ids[0]]
        only = list_conversations(
            session=session, tenant_id=tenant.id, status=ConversationStatus.RESOLVED
        )
        assert [c.id for c in only] == [ids[1]]


def test_a_long_read_never_holds_up_a_write(db: DbEngine) -> None:
    """The nightly dataset build reads a tenant's whole history in one snapshot: a customer's
    message must still be stored (and acknowledged) meanwhile, and the read must not see it."""
    tenant, _ = make_tenant(db)
    assert tenant.id is not None
    with session_scope(db) as session:
        conversation, _ = start_conversation(session=session, tenant_id=tenant.id)
        append_message(session=session, conversation=conversation, role=Role.CUSTOMER, text="one")
        conversation_id = conversation.id

    with read_scope(db) as reading:
        before = reading.exec(select(Message)).all()
        started = time.monotonic()
        with session_scope(db) as writing:  # a customer's message arriving meanwhile
            found = writing.get(Conversation, conversation_id)
            assert found is not None
            append_message(session=writing, conversation=found, role=Role.CUSTOMER, text="two")
        waited = time.monotonic() - started
        assert len(reading.exec(select(Message)).all()) == len(before) == 1  # one snapshot
    assert waited < 5  # not the 30 s busy timeout a write lock held by the read would cost
    with read_scope(db) as reading:  # a read scope keeps nothing
        found = reading.get(Conversation, conversation_id)
        assert found is not None
        found.subject = "changed"
    with session_scope(db) as session:
        kept = session.get(Conversation, conversation_id)
        assert kept is not None and kept.subject == ""
