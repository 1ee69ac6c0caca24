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


SENTENCES = [
    "I ordered a large oat milk latte and a blueberry muffin for pickup at the Elm Street shop",
    "the app said it would be ready at half past eight but the barista could not find it",
    "my loyalty card shows the stars for an order from last week twice and this one not at all",
    "could you also tell me whether the seasonal pumpkin syrup contains any dairy or nuts",
    "I paid with the card that ends in the usual digits and the receipt came by email",
]


def long_message(n: int, chars: int = 3900) -> str:
    """A customer's long, ordinary message of ``chars`` characters (about 800 tokens)."""
    words: list[str] = []
    i = 0
    while len(" ".join(words)) < chars:
        words += f"({n}.{i}) {SENTENCES[(n + i) % len(SENTENCES)]}.".split()
        i += 1
    return " ".join(words)[:chars]
