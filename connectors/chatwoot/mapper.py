"""Chatwoot message events -> our records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connectors.errors import RecordError
from connectors.records import (
    InboundConversation,
    InboundMessage,
    Requester,
    as_object,
    parse_timestamp,
    require_id,
)
from connectors.text import clean_body
from core.models import Role

SOURCE = "chatwoot"
MESSAGE_EVENTS = {"message_created", "message_updated"}


# Webhooks spell message_type as a word, the REST API as its enum number.
MESSAGE_TYPES = {0: "incoming", 1: "outgoing", 2: "activity", 3: "template"}


def _role(payload: dict[str, Any]) -> Role | None:
    sender_type = (payload.get("sender") or {}).get("type")
    if sender_type == "agent_bot":
        return None  # our own bot (or another): never ingest bot output as training data
    kind = payload.get("message_type")
    kind = MESSAGE_TYPES.get(kind, kind) if isinstance(kind, int) else kind
    if kind == "incoming":
        return Role.CUSTOMER
    if kind == "outgoing":
        return Role.AGENT
    if kind == "activity":
        return Role.SYSTEM
    return None


def map_event(
    payload: dict[str, Any], delivery_id: str | None
) -> tuple[str, InboundConversation | None]:
    try:
        account = require_id(as_object(payload.get("account"), "account").get("id"), "account.id")
        message_id = require_id(payload.get("id"), "message id")
        event_id = delivery_id or f"{payload['event']}:{account}:{message_id}"
        if payload.get("event") not in MESSAGE_EVENTS:
            return event_id, None
        conversation = payload["conversation"]
    except (KeyError, TypeError) as exc:
        raise RecordError(f"not a Chatwoot message event: missing {exc}") from None
    if payload.get("event") == "message_updated" and _deleted(payload):
        # Chatwoot keeps a deleted message as "This message was deleted" with a flag.
        return event_id, InboundConversation(
            source=SOURCE,
            external_id=f"{account}:{conversation['id']}",
            redacted_ids=[f"{account}:{message_id}"],
        )
    role = _role(payload)
    text = clean_body(text=str(payload.get("content") or ""))
    if role is None or not text:
        return event_id, None
    message = InboundMessage(
        role=role,
        text=text,
        sent_at=parse_timestamp(payload.get("created_at") or ""),
        external_id=f"{account}:{message_id}",
        internal_note=bool(payload.get("private")),
        author=(payload.get("sender") or {}).get("name"),
    )
    return event_id, InboundConversation(
        source=SOURCE,
        external_id=f"{account}:{conversation['id']}",
        channel="chat",
        messages=[message],
        requester=_requester(conversation, payload),
    )


def _deleted(item: dict[str, Any]) -> bool:
    attributes = item.get("content_attributes")
    return isinstance(attributes, dict) and bool(attributes.get("deleted"))


def _requester(conversation: dict[str, Any], payload: dict[str, Any]) -> Requester | None:
    """The contact the conversation is with: the conversation's meta sender, or the sender of
    an incoming message."""
    meta = conversation.get("meta")
    contact = meta.get("sender") if isinstance(meta, dict) else None
    if not isinstance(contact, dict) and payload.get("message_type") == "incoming":
        contact = payload.get("sender")
    if not isinstance(contact, dict) or not contact.get("id"):
        return None
    return Requester(str(contact["id"]), contact.get("email"), contact.get("name"))


def conversation(
    account: str, data: dict[str, Any], messages: list[dict[str, Any]], own: frozenset[str]
) -> InboundConversation:
    """A conversation and its messages from the REST API (backfill), with the webhook's ids."""
    try:
        record = InboundConversation(
            source=SOURCE,
            external_id=f"{account}:{data['id']}",
            channel="chat",
            requester=_requester(data, {}),
        )
        for item in messages:
            if _deleted(item):
                record.redacted_ids.append(f"{account}:{item['id']}")
                continue
            role = _role(item)
            sender = item.get("sender") or {}
            text = clean_body(text=str(item.get("content") or ""))
            if role is None or not text or str(sender.get("id")) in own:
                continue
            created = item["created_at"]
            record.messages.append(
                InboundMessage(
                    role=role,
                    text=text,
                    sent_at=datetime.fromtimestamp(created, tz=UTC)
                    if isinstance(created, int | float)
                    else parse_timestamp(created),
                    external_id=f"{account}:{item['id']}",
                    internal_note=bool(item.get("private")),
                    author=sender.get("name"),
                )
            )
    except (KeyError, TypeError) as exc:
        raise RecordError(f"not a Chatwoot conversation: missing {exc}") from None
    return record
