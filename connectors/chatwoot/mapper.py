"""Chatwoot message events -> our records."""

from __future__ import annotations

from typing import Any

from connectors.records import InboundConversation, InboundMessage, RecordError, parse_timestamp
from connectors.text import clean_body
from core.models import Role

SOURCE = "chatwoot"
MESSAGE_EVENTS = {"message_created", "message_updated"}


def _role(payload: dict[str, Any]) -> Role | None:
    sender_type = (payload.get("sender") or {}).get("type")
    if sender_type == "agent_bot":
        return None  # our own bot (or another): never ingest bot output as training data
    kind = payload.get("message_type")
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
