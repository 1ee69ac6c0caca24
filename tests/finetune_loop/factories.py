"""Conversations for the training loop's tests, written through the real crud functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine as DbEngine

from core.crud.conversations import append_message, start_conversation
from core.db import session_scope
from core.models import Conversation, ConversationStatus, Customer, Role

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def add_customer(
    db: DbEngine, tenant_id: int, *, verified: bool = True, blocked: bool = False
) -> int:
    with session_scope(db) as session:
        customer = Customer(tenant_id=tenant_id, verified=verified, blocked=blocked)
        session.add(customer)
        session.flush()
        assert customer.id is not None
        return customer.id


def add_conversation(
    db: DbEngine,
    tenant_id: int,
    turns: list[tuple[Role, str]],
    *,
    customer_id: int | None = None,
    resolved: bool = True,
    flagged: bool = False,
    notes: list[str] = (),  # type: ignore[assignment]
) -> int:
    """A widget conversation: (role, text) turns, then internal notes by the agent."""
    with session_scope(db) as session:
        conversation, _ = start_conversation(
            session=session, tenant_id=tenant_id, customer_id=customer_id
        )
        for i, (role, text) in enumerate(turns):
            append_message(
                session=session,
                conversation=conversation,
                role=role,
                text=text,
                sent_at=T0 + timedelta(minutes=i),
            )
        for note in notes:
            append_message(
                session=session,
                conversation=conversation,
                role=Role.AGENT,
                text=note,
                internal_note=True,
            )
        conversation.status = ConversationStatus.RESOLVED if resolved else ConversationStatus.OPEN
        conversation.flagged = flagged
        session.add(conversation)
        session.flush()
        assert conversation.id is not None
        return conversation.id


def conversation_row(db: DbEngine, conversation_id: int) -> Conversation:
    with session_scope(db) as session:
        row = session.get(Conversation, conversation_id)
        assert row is not None
        session.expunge(row)
        return row
