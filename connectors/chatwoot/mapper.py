"""Chatwoot message events -> our records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connectors.errors import RecordError
from connectors.records import InboundConversation, InboundMessage, parse_timestamp
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
        account = payload["account"]["id"]
        message_id = payload["id"]
        event_id = delivery_id or f"{payload['event']}:{account}:{message_id}"
        if payload.get("event") not in MESSAGE_EVENTS:
            return event_id, None
        conversation = payload["conversation"]
    except (KeyError, TypeError) as exc:
        raise RecordError(f"not a Chatwoot message event: missing {exc}") from None
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
    )


def conversation(
    account: str, data: dict[str, Any], messages: list[dict[str, Any]], own: frozenset[str]
) -> InboundConversation:
    """A conversation and its messages from the REST API (backfill), with the webhook's ids."""
    try:
        record = InboundConversation(
            source=SOURCE, external_id=f"{account}:{data['id']}", channel="chat"
        )
        for item in messages:
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
