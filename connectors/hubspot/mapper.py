"""HubSpot webhook events and messages -> our records."""

from __future__ import annotations

from typing import Any

from connectors.errors import RecordError
from connectors.records import (
    InboundConversation,
    InboundMessage,
    Requester,
    parse_timestamp,
    require_id,
)
from connectors.text import clean_body
from core.models import Role

SOURCE = "hubspot"
NEW_MESSAGE = "conversation.newMessage"
# A thread deleted (moved to trash, then gone) or erased for a GDPR request: both remove it.
DELETIONS = {"conversation.deletion", "conversation.privacyDeletion"}
# Actor id prefixes: V- visitor/contact, A- HubSpot user (agent), B- bot, I- integration, S- system.
AGENT_PREFIX = "A-"


def event_key(event: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """(delivery id, thread id, message id); ids are None for events that carry no message."""
    subscription = require_id(event.get("subscriptionId"), "subscriptionId")
    event_id = f"{subscription}:{require_id(event.get('eventId'), 'eventId')}"
    if event.get("subscriptionType") != NEW_MESSAGE:
        return event_id, None, None
    return (
        event_id,
        require_id(event.get("objectId"), "objectId"),
        require_id(event.get("messageId"), "messageId"),
    )


def deletion(event: dict[str, Any]) -> InboundConversation | None:
    if event.get("subscriptionType") not in DELETIONS:
        return None
    thread_id = require_id(event.get("objectId"), "objectId")
    return InboundConversation(source=SOURCE, external_id=thread_id, deleted=True)


def message(thread_id: str, data: dict[str, Any]) -> InboundConversation | None:
    try:
        kind = data["type"]
        actor = str(data.get("createdBy") or (data.get("senders") or [{}])[0].get("actorId") or "")
        if kind == "COMMENT":
            role, internal = Role.AGENT, True
        elif kind != "MESSAGE":
            return None  # welcome messages, status changes, assignments
        elif data.get("direction") == "INCOMING":
            role, internal = Role.CUSTOMER, False
        elif actor.startswith(AGENT_PREFIX):
            role, internal = Role.AGENT, False
        else:
            return None  # bots and integrations, ours included: never ingest ourselves
        text = clean_body(
            text=data.get("text"), html=data.get("richText"), email=data.get("channelId") == "1002"
        )
        sent_at = parse_timestamp(data["createdAt"])
        message_id = str(data["id"])
    except (KeyError, TypeError, IndexError) as exc:
        raise RecordError(f"not a HubSpot message: missing {exc}") from None
    if not text:
        return None
    senders = data.get("senders") or [{}]
    requester = None
    if role == Role.CUSTOMER and isinstance(senders[0], dict) and senders[0].get("actorId"):
        identifier = senders[0].get("deliveryIdentifier") or {}
        email = identifier.get("value") if identifier.get("type") == "HS_EMAIL_ADDRESS" else None
        requester = Requester(str(senders[0]["actorId"]), email, senders[0].get("name"))
    return InboundConversation(
        source=SOURCE,
        external_id=thread_id,
        channel="email" if data.get("channelId") == "1002" else "chat",
        subject=str(data.get("subject") or ""),
        messages=[
            InboundMessage(
                role=role,
                text=text,
                sent_at=sent_at,
                external_id=message_id,
                internal_note=internal,
                author=senders[0].get("name"),
            )
        ],
        requester=requester,
    )


def thread(
    thread_id: str, messages: list[dict[str, Any]], own: frozenset[str]
) -> InboundConversation:
    """A whole thread (backfill): each message as the webhook path maps it, ours left out."""
    record = InboundConversation(source=SOURCE, external_id=thread_id)
    for data in messages:
        actor = str(data.get("createdBy") or "")
        mapped = None if actor in own else message(thread_id, data)
        if mapped is None:
            continue
        record.messages.extend(mapped.messages)
        record.requester = record.requester or mapped.requester
        record.channel = mapped.channel
        record.subject = record.subject or mapped.subject
    return record
