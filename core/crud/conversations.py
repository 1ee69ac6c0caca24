"""Conversations and their messages.

Messages are persisted before anything else happens to them, each with a per-conversation
sequence number handed out atomically, so a client that remembers the last number it saw can
always ask for exactly what it missed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from core.db import insert_if_absent
from core.errors import NotFoundError
from core.models import (
    NATIVE_SOURCE,
    Conversation,
    ConversationStatus,
    Customer,
    Message,
    Role,
    utcnow,
)
from core.secrets import hash_token, new_token

CONVERSATION_TOKEN_PREFIX = "slc"


def start_conversation(
    *,
    session: Session,
    tenant_id: int,
    customer_id: int | None = None,
    channel: str = "widget",
    source: str = NATIVE_SOURCE,
    external_id: str | None = None,
    subject: str = "",
) -> tuple[Conversation, str]:
    """Open a conversation; returns it with the resume token its client must keep."""
    token = new_token(CONVERSATION_TOKEN_PREFIX)
    conversation = Conversation(
        tenant_id=tenant_id,
        customer_id=customer_id,
        channel=channel,
        source=source,
        external_id=external_id,
        subject=subject,
        access_token_hash=hash_token(token),
    )
    session.add(conversation)
    session.flush()
    return conversation, token


def create_anonymous_customer(*, session: Session, tenant_id: int) -> Customer:
    customer = Customer(tenant_id=tenant_id, verified=False)
    session.add(customer)
    session.flush()
    return customer


def get_conversation(
    *, session: Session, tenant_id: int, conversation_id: int
) -> Conversation | None:
    """Scoped to the tenant, so one tenant can never read another's conversation by id."""
    # By primary key (the session's cached load), then the tenant check: the cheapest read on
    # the path of every acknowledged message.
    conversation = session.get(Conversation, conversation_id)
    if conversation is None or conversation.tenant_id != tenant_id:
        return None
    return conversation


class ConversationNotFoundError(NotFoundError):
    pass


def require_conversation(*, session: Session, tenant_id: int, conversation_id: int) -> Conversation:
    """Like get_conversation, for callers that cannot go on without it."""
    conversation = get_conversation(
        session=session, tenant_id=tenant_id, conversation_id=conversation_id
    )
    if conversation is None:
        raise ConversationNotFoundError(f"conversation {conversation_id} not found")
    return conversation


def get_conversation_by_token(
    *, session: Session, tenant_id: int, token: str
) -> Conversation | None:
    return session.exec(
        select(Conversation).where(
            Conversation.access_token_hash == hash_token(token),
            Conversation.tenant_id == tenant_id,
        )
    ).first()


def list_conversations(
    *,
    session: Session,
    tenant_id: int,
    status: ConversationStatus | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> Sequence[Conversation]:
    """Newest first, keyset-paginated on id so deep pages cost the same as the first."""
    query = select(Conversation).where(Conversation.tenant_id == tenant_id)
    if status is not None:
        query = query.where(Conversation.status == status)
    if before_id is not None:
        query = query.where(col(Conversation.id) < before_id)
    return session.exec(query.order_by(col(Conversation.id).desc()).limit(limit)).all()


# The hottest write path (every acknowledged message) runs two prebuilt Core statements: no
# look-up first, no savepoint, no unit-of-work flush. Built once, compiled once per dialect.
_CONVERSATIONS = Conversation.__table__  # type: ignore[attr-defined]
_MESSAGES = Message.__table__  # type: ignore[attr-defined]
# Scoped to the tenant, so it doubles as the check that the conversation is the caller's.
_BUMP_SEQ = (
    sa.update(_CONVERSATIONS)
    .where(
        _CONVERSATIONS.c.id == sa.bindparam("conversation"),
        _CONVERSATIONS.c.tenant_id == sa.bindparam("tenant"),
    )
    .values(last_seq=_CONVERSATIONS.c.last_seq + 1, updated_at=sa.bindparam("now"))
    .returning(_CONVERSATIONS.c.last_seq, _CONVERSATIONS.c.status)
)
_UNDO_SEQ = (
    sa.update(_CONVERSATIONS)
    .where(_CONVERSATIONS.c.id == sa.bindparam("conversation"))
    .values(last_seq=_CONVERSATIONS.c.last_seq - 1)
)
# A second copy (the same client id, or the same provider id) is refused by its unique key
# without an error, so nothing else in the transaction is lost.
_INSERT_MESSAGE = insert_if_absent(_MESSAGES)


def append_message(
    *,
    session: Session,
    conversation: Conversation,
    role: Role,
    text: str,
    client_id: str | None = None,
    author: str | None = None,
    internal_note: bool = False,
    adapter_version_id: int | None = None,
    sent_at: datetime | None = None,
    source: str = NATIVE_SOURCE,
    external_id: str | None = None,
    grounding: dict[str, Any] | None = None,
) -> tuple[Message, bool]:
    """Store a message and return it with ``created``.

    A repeated ``client_id`` (or provider ``external_id``) returns the message stored the first
    time (``created`` False): clients retry after a dropped connection, providers redeliver,
    and neither may create a duplicate. The sequence number comes from an UPDATE … RETURNING
    on the conversation row, which holds its lock (PostgreSQL) or the write lock (SQLite's
    BEGIN IMMEDIATE) to the commit, so concurrent writers never share a number and an undone
    bump leaves no gap.
    """
    assert conversation.id is not None
    stored = _append(
        session,
        Message(
            tenant_id=conversation.tenant_id,
            conversation_id=conversation.id,
            seq=0,
            role=role,
            text=text,
            client_id=client_id,
            author=author,
            internal_note=internal_note,
            adapter_version_id=adapter_version_id,
            sent_at=sent_at or utcnow(),
            source=source,
            external_id=external_id,
            grounding=grounding,
        ),
    )
    if stored is None:
        raise ConversationNotFoundError(f"conversation {conversation.id} not found")
    message, created, _ = stored
    if created:  # the caller's object shows the row as an ORM UPDATE would have left it
        set_committed_value(conversation, "last_seq", message.seq)
        set_committed_value(conversation, "updated_at", message.created_at)
    return message, created


def append_customer_message(
    *, session: Session, tenant_id: int, conversation_id: int, text: str, client_id: str
) -> tuple[Message, bool]:
    """A widget customer's message, by conversation id (no conversation read first: the ack
    path). A new question reopens a resolved conversation."""
    stored = _append(
        session,
        Message(
            tenant_id=tenant_id,
            conversation_id=conversation_id,
            seq=0,
            role=Role.CUSTOMER,
            text=text,
            client_id=client_id,
            sent_at=utcnow(),
        ),
    )
    if stored is None:
        raise ConversationNotFoundError(f"conversation {conversation_id} not found")
    message, created, status = stored
    if created and status == ConversationStatus.RESOLVED:
        session.execute(
            sa.update(Conversation)
            .where(col(Conversation.id) == conversation_id)
            .values(status=ConversationStatus.OPEN, resolved_at=None)
        )
    return message, created


def _append(session: Session, message: Message) -> tuple[Message, bool, str] | None:
    """(message, created, the conversation's status), or None when the conversation is not
    the tenant's. ``message.seq`` is filled in here."""
    connection = session.connection()
    now = utcnow()
    bumped = connection.execute(
        _BUMP_SEQ,
        {"conversation": message.conversation_id, "tenant": message.tenant_id, "now": now},
    ).first()
    if bumped is None:
        return None
    message.seq, status = int(bumped[0]), str(bumped[1])
    message.created_at = now
    inserted = connection.execute(
        _INSERT_MESSAGE[connection.dialect.name], message.model_dump(exclude={"id"})
    ).scalar_one_or_none()
    if inserted is not None:
        message.id = int(inserted)
        # Known to the session as the stored row (no second INSERT), so a caller may still
        # change it and have the change flushed.
        make_transient_to_detached(message)
        session.add(message)
        return message, True, status
    connection.execute(_UNDO_SEQ, {"conversation": message.conversation_id})
    existing = _find_copy(session, message)
    if existing is None:
        raise RuntimeError(
            f"message refused by a unique key, and no copy found ({message.conversation_id})"
        )
    return existing, False, status


def _find_copy(session: Session, message: Message) -> Message | None:
    """The stored message a refused insert duplicates (same client id, or same provider id)."""
    if message.client_id is not None:
        found = find_message_by_client_id(
            session=session, conversation_id=message.conversation_id, client_id=message.client_id
        )
        if found is not None:
            return found
    if message.external_id is None:
        return None
    return session.exec(
        select(Message).where(
            Message.tenant_id == message.tenant_id,
            Message.source == message.source,
            Message.external_id == message.external_id,
        )
    ).first()


def find_message_by_client_id(
    *, session: Session, conversation_id: int, client_id: str
) -> Message | None:
    return session.exec(
        select(Message).where(
            Message.conversation_id == conversation_id, Message.client_id == client_id
        )
    ).first()


def list_messages(
    *,
    session: Session,
    conversation_id: int,
    after_seq: int = 0,
    limit: int | None = None,
    include_internal: bool = True,
) -> Sequence[Message]:
    query = select(Message).where(
        Message.conversation_id == conversation_id, col(Message.seq) > after_seq
    )
    if not include_internal:
        query = query.where(col(Message.internal_note).is_(False))
    query = query.order_by(col(Message.seq))
    if limit is not None:
        query = query.limit(limit)
    return session.exec(query).all()


def changed_widget_conversations(
    *, session: Session, after: datetime, before: datetime
) -> list[tuple[int, int]]:
    """(tenant_id, conversation_id) of our own (widget) conversations that are not resolved and
    changed in the window: where a lost reply would be (the responder decides per conversation
    whether the bot still owes one)."""
    rows = session.exec(
        select(Conversation.tenant_id, Conversation.id).where(
            Conversation.source == NATIVE_SOURCE,
            Conversation.status != ConversationStatus.RESOLVED,
            col(Conversation.updated_at) > after,
            col(Conversation.updated_at) <= before,
        )
    ).all()
    return [(tenant_id, conversation_id) for tenant_id, conversation_id in rows if conversation_id]


def bot_replied_between(
    *, session: Session, conversation_id: int, after_seq: int, before_seq: int
) -> bool:
    """Whether a bot reply was stored between two sequence numbers. Asked after appending a
    reply, in the same transaction: the append holds the conversation's lock, so a reply that
    another worker stored meanwhile is seen here (one reply per customer message)."""
    return (
        session.exec(
            select(Message.id).where(
                Message.conversation_id == conversation_id,
                Message.role == Role.BOT,
                Message.seq > after_seq,
                Message.seq < before_seq,
            )
        ).first()
        is not None
    )


def recent_messages(*, session: Session, conversation_id: int, limit: int) -> Sequence[Message]:
    """The last ``limit`` customer-visible messages, oldest first (the model's context)."""
    rows = session.exec(
        select(Message)
        .where(Message.conversation_id == conversation_id, col(Message.internal_note).is_(False))
        .order_by(col(Message.seq).desc())
        .limit(limit)
    ).all()
    return list(reversed(rows))


def last_messages(*, session: Session, conversation_ids: list[int]) -> dict[int, Message]:
    """The newest message of each conversation, in one query (console list previews)."""
    if not conversation_ids:
        return {}
    newest = (
        select(Message.conversation_id, sa.func.max(Message.seq).label("seq"))
        .where(col(Message.conversation_id).in_(conversation_ids))
        .group_by(col(Message.conversation_id))
        .subquery()
    )
    rows = session.exec(
        select(Message).join(
            newest,
            sa.and_(
                col(Message.conversation_id) == newest.c.conversation_id,
                col(Message.seq) == newest.c.seq,
            ),
        )
    ).all()
    return {m.conversation_id: m for m in rows}


def recently_active(*, session: Session, tenant_id: int, limit: int = 50) -> Sequence[Conversation]:
    """The tenant's conversations, most recently updated first (the console's list)."""
    return session.exec(
        select(Conversation)
        .where(Conversation.tenant_id == tenant_id)
        .order_by(col(Conversation.updated_at).desc(), col(Conversation.id).desc())
        .limit(limit)
    ).all()
