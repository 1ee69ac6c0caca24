"""Test data built through the real data functions."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import col, select

from core.crud.conversations import start_conversation
from core.crud.tenants import create_tenant
from core.db import session_scope
from core.models import Conversation, Message, Tenant


def make_tenant(db: DbEngine, slug: str = "acme", **kwargs: object) -> tuple[Tenant, str]:
    with session_scope(db) as session:
        return create_tenant(session=session, slug=slug, **kwargs)  # type: ignore[arg-type]


def make_conversation(db: DbEngine, tenant: Tenant) -> tuple[Conversation, str]:
    assert tenant.id is not None
    with session_scope(db) as session:
        return start_conversation(session=session, tenant_id=tenant.id)


def all_rows(db: DbEngine, model: Any, order_by: Any = None) -> list[Any]:
    """Every row of a table, detached so the test can read it after the session."""
    with session_scope(db) as session:
        query = select(model) if order_by is None else select(model).order_by(order_by)
        found = list(session.exec(query).all())
        for row in found:
            session.expunge(row)
        return found


def messages_of(db: DbEngine, external_id: str) -> list[Message]:
    """The messages of the conversation a provider calls `external_id`, in sequence order."""
    with session_scope(db) as session:
        conversation = session.exec(
            select(Conversation).where(Conversation.external_id == external_id)
        ).one()
        rows = list(
            session.exec(
                select(Message)
                .where(Message.conversation_id == conversation.id)
                .order_by(col(Message.seq))
            ).all()
        )
        for row in rows:
            session.expunge(row)
        return rows
