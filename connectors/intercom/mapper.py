"""Intercom notifications and conversations -> our records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connectors.errors import RecordError
from connectors.records import InboundConversation, InboundMessage
from connectors.text import clean_body
from core.models import Role

SOURCE = "intercom"
CUSTOMER_AUTHORS = {"user", "lead", "contact"}
MESSAGE_PARTS = {"comment", "note"}


def notification(payload: dict[str, Any]) -> tuple[str, str | None]:
    """(notification id, conversation id or None when the topic carries no conversation)."""
    try:
        event_id = str(payload["id"])
        item = payload["data"]["item"]
    except (KeyError, TypeError) as exc:
        raise RecordError(f"not an Intercom notification: missing {exc}") from None
    if (
        not str(payload.get("topic", "")).startswith("conversation.")
        or item.get("type") != "conversation"
    ):
        return event_id, None
    return event_id, str(item["id"])


def _message(part: dict[str, Any], part_id: str) -> InboundMessage | None:
    author_type = (part.get("author") or {}).get("type")
    if author_type in CUSTOMER_AUTHORS:
        role = Role.CUSTOMER
    elif author_type == "admin":
        role = Role.AGENT
    else:
        return None  # bots (ours or Fin) and system authors are not training data
    text = clean_body(
        text=part.get("body") if "<" not in str(part.get("body")) else None, html=part.get("body")
    )
    if not text:
        return None
    return InboundMessage(
        role=role,
        text=text,
        sent_at=datetime.fromtimestamp(int(part["created_at"]), tz=UTC),
        external_id=part_id,
        internal_note=part.get("part_type") == "note",
        author=(part.get("author") or {}).get("name"),
    )


def conversation(data: dict[str, Any]) -> InboundConversation:
    """The whole transcript: the opening message (source) and every comment or note part."""
    try:
        conversation_id = str(data["id"])
        source = data["source"]
        messages = []
        opening = _message(
            {**source, "created_at": data["created_at"]}, f"{conversation_id}:source"
        )
        if opening is not None:
            messages.append(opening)
        for part in (data.get("conversation_parts") or {}).get("conversation_parts", []):
            if part.get("part_type") in MESSAGE_PARTS:
                message = _message(part, str(part["id"]))
                if message is not None:
                    messages.append(message)
    except (KeyError, TypeError, ValueError) as exc:
        raise RecordError(f"not an Intercom conversation: bad or missing {exc}") from None
    return InboundConversation(
        source=SOURCE,
        external_id=conversation_id,
        channel="chat",
        subject=str(source.get("subject") or ""),
        messages=messages,
    )
