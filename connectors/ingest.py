"""Idempotent ingestion: the same conversation or message delivered again changes nothing.

Keys are the provider's own: (tenant, source, external id) for conversations and messages, both
unique in the database, so a duplicate can never be stored even by racing writers. Messages are
appended in the provider's time order (deliveries arrive out of order; ``sent_at`` keeps the
provider's timestamp for every later ordering).

Erasure flows through here too. A record that says the provider deleted the conversation or
redacted messages erases our copies (core/erasure.py) and leaves tombstones; a record that
carries something tombstoned (an erased conversation, message or person) stores none of it, so
a replay or a backfill never brings erased text back. Deletion stubs ("This message was
deleted") are never stored.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from connectors.records import InboundConversation, InboundMessage
from connectors.text import is_placeholder
from core.crud.conversations import append_message, start_conversation
from core.crud.customers import customer_for_requester
from core.erasure import Erased, Tombstone, email_key, erase_rows, tombstoned
from core.models import Conversation, Message, TombstoneKind


@dataclass
class IngestResult:
    conversation_created: bool = False
    messages_created: int = 0
    messages_skipped: int = 0
    # What the record erased; the caller scrubs training files with it after the commit.
    erased: Erased | None = None
    # It carried something erased earlier (a conversation, person or message): left out.
    erased_before: bool = False


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


def _provider_ids(tenant_id: int, source: str, ids: list[str]) -> list[ColumnElement[bool]]:
    return [
        col(Message.tenant_id) == tenant_id,
        col(Message.source) == source,
        col(Message.external_id).in_(ids),
    ]


def _stored(session: Session, tenant_id: int, source: str, ids: list[str]) -> list[Message]:
    """Our copies of the provider's messages ``ids``."""
    return list(session.exec(select(Message).where(*_provider_ids(tenant_id, source, ids))).all())


def _erase(
    session: Session, tenant_id: int, record: InboundConversation, origin: str
) -> Erased | None:
    """The provider's deletion or redaction, applied to our copies."""
    if record.deleted:
        found = _find_conversation(session, tenant_id, record.source, record.external_id)
        return erase_rows(
            session,
            tenant_id=tenant_id,
            conversation_ids=[found.id] if found is not None and found.id is not None else [],
            tombstones=[Tombstone(record.source, TombstoneKind.CONVERSATION, record.external_id)],
            actor=origin,
            reason=f"conversation deleted in {record.source}",
            subject={"source": record.source, "conversation": record.external_id},
        )
    if not record.redacted_ids:
        return None
    stored = _stored(session, tenant_id, record.source, record.redacted_ids)
    return erase_rows(
        session,
        tenant_id=tenant_id,
        message_ids=[m.id for m in stored if m.id is not None],
        tombstones=[
            Tombstone(record.source, TombstoneKind.MESSAGE, m) for m in record.redacted_ids
        ],
        actor=origin,
        reason=f"messages redacted in {record.source}",
        subject={
            "source": record.source,
            "conversation": record.external_id,
            "messages": sorted(record.redacted_ids),
        },
    )


def _tombstones(
    session: Session, tenant_id: int, record: InboundConversation
) -> set[tuple[str, str]]:
    """Everything in the record that was erased before, in one look-up."""
    keys = [(TombstoneKind.CONVERSATION, record.external_id)]
    keys += [(TombstoneKind.MESSAGE, m.external_id) for m in record.messages]
    person = record.requester
    if person is not None and person.external_id:
        keys.append((TombstoneKind.PERSON, person.external_id))
    if person is not None and person.email:
        keys.append((TombstoneKind.EMAIL, email_key(person.email)))
    return tombstoned(session, tenant_id, record.source, keys)


def _erased_before(record: InboundConversation, erased: set[tuple[str, str]]) -> bool:
    """The conversation or its requester was erased: nothing of it is stored again."""
    person = record.requester
    return (
        (TombstoneKind.CONVERSATION, record.external_id) in erased
        or bool(person and (TombstoneKind.PERSON, person.external_id) in erased)
        or bool(
            person and person.email and (TombstoneKind.EMAIL, email_key(person.email)) in erased
        )
    )


def _storable(
    record: InboundConversation, erased: set[tuple[str, str]]
) -> tuple[list[InboundMessage], bool]:
    """The messages to store, and whether any was left out because it was erased before."""
    redacted = set(record.redacted_ids)
    candidates = [
        m for m in record.messages if m.external_id not in redacted and not is_placeholder(m.text)
    ]
    kept = [m for m in candidates if (TombstoneKind.MESSAGE, m.external_id) not in erased]
    return kept, len(kept) < len(candidates)


def _customer_id(session: Session, tenant_id: int, record: InboundConversation) -> int | None:
    person = record.requester
    if person is None:
        return None
    customer = customer_for_requester(
        session=session,
        tenant_id=tenant_id,
        source=record.source,
        external_id=person.external_id,
        email=person.email,
        name=person.name,
    )
    return customer.id if customer is not None else None


def _make_private(session: Session, tenant_id: int, record: InboundConversation) -> None:
    for message in _stored(session, tenant_id, record.source, record.private_ids):
        message.internal_note = True
        session.add(message)


def ingest_conversation(
    *, session: Session, tenant_id: int, record: InboundConversation, origin: str = "import"
) -> IngestResult:
    """``origin`` names who sent the record (for the audit of any erasure it carries)."""
    result = IngestResult(erased=_erase(session, tenant_id, record, origin))
    erased = set() if record.deleted else _tombstones(session, tenant_id, record)
    if record.deleted or _erased_before(record, erased):
        result.erased_before = not record.deleted
        result.messages_skipped = len(record.messages)
        return result
    if record.private_ids:
        _make_private(session, tenant_id, record)
    messages, result.erased_before = _storable(record, erased)
    result.messages_skipped = len(record.messages) - len(messages)
    if not messages:  # e.g. a thread with only bot output: no empty conversations
        return result
    conversation = _find_conversation(session, tenant_id, record.source, record.external_id)
    if conversation is not None and conversation.customer_id is None and record.requester:
        conversation.customer_id = _customer_id(session, tenant_id, record)
        session.add(conversation)
    if conversation is None:
        try:
            with session.begin_nested():
                conversation, _ = start_conversation(
                    session=session,
                    tenant_id=tenant_id,
                    customer_id=_customer_id(session, tenant_id, record),
                    channel=record.channel,
                    source=record.source,
                    external_id=record.external_id,
                    subject=record.subject,
                )
            result.conversation_created = True
        except IntegrityError:  # a concurrent delivery created it first
            conversation = _find_conversation(session, tenant_id, record.source, record.external_id)
            assert conversation is not None
    known = set(
        session.exec(
            select(Message.external_id).where(
                *_provider_ids(tenant_id, record.source, [m.external_id for m in messages])
            )
        ).all()
    )
    for message in sorted(messages, key=lambda m: (m.sent_at, m.external_id)):
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
