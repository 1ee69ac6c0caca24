"""Idempotent ingestion: the same conversation or message delivered again changes nothing.

Keys are the provider's own: (tenant, source, external id) for conversations and messages, both
unique in the database, so a duplicate can never be stored even by racing writers. Messages are
appended in the provider's time order (deliveries arrive out of order; ``sent_at`` keeps the
provider's timestamp for every later ordering).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from connectors.records import InboundConversation
from core.crud.conversations import append_message, start_conversation
from core.models import Conversation, Message


@dataclass
class IngestResult:
    conversation_created: bool = False
    messages_created: int = 0
    messages_skipped: int = 0


def _find_conversation(
    session: Session, tenant_id: int, source: str, external_id: str
) -> Conversation | None:
    return session.exec(
        select(Conversation).where(
            Conversation.tenant_id == tenant_id,
            Conversation.source == source,
            Conversation.external_id == external_id,
        )
    ).first()


def _known_message_ids(session: Session, tenant_id: int, source: str, ids: list[str]) -> set[str]:
    rows = session.exec(
        select(Message.external_id).where(
            Message.tenant_id == tenant_id,
            Message.source == source,
            Message.external_id.in_(ids),  # type: ignore[union-attr]
        )
    ).all()
    return {row for row in rows if row is not None}


def ingest_conversation(
    *, session: Session, tenant_id: int, record: InboundConversation
) -> IngestResult:
    result = IngestResult()
    if not record.messages:  # e.g. a thread with only bot output: no empty conversations
        return result
    conversation = _find_conversation(session, tenant_id, record.source, record.external_id)
    if conversation is None:
        try:
            with session.begin_nested():
                conversation, _ = start_conversation(
                    session=session,
                    tenant_id=tenant_id,
                    channel=record.channel,
                    source=record.source,
                    external_id=record.external_id,
                    subject=record.subject,
                )
            result.conversation_created = True
        except IntegrityError:  # a concurrent delivery created it first
            conversation = _find_conversation(session, tenant_id, record.source, record.external_id)
            assert conversation is not None
    known = _known_message_ids(
        session, tenant_id, record.source, [m.external_id for m in record.messages]
    )
    for message in sorted(record.messages, key=lambda m: (m.sent_at, m.external_id)):
        if message.external_id in known:
            result.messages_skipped += 1
            continue
        # A copy stored meanwhile by another path (webhook vs backfill) is returned, not added.
        _, created = append_message(
            session=session,
            conversation=conversation,
            role=message.role,
            text=message.text,
            author=message.author,
            internal_note=message.internal_note,
            sent_at=message.sent_at,
            source=record.source,
            external_id=message.external_id,
        )
        known.add(message.external_id)
        if created:
            result.messages_created += 1
        else:
            result.messages_skipped += 1
    return result
