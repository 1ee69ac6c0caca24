"""Intercom notifications, conversations and tickets -> our records.

A message is whatever a person wrote, whatever the part is called: an admin who replies and
closes in one action sends a part of type `close` (or `assignment`, `open`, `snoozed`, ...)
with the reply in its body. So every part with a non-empty body counts, by its author
(developers.intercom.com, "Conversation part" and "Ticket part", API 2.11-2.15):

- `admin`: an agent message (a `note` part is an internal note);
- `user`, `lead`, `contact`: a customer message;
- `bot` (Fin, Operator, workflows), `team`, our own integration user: skipped, never training
  data;
- a part marked `redacted` is never stored, and erases our copy if we had one.

Tickets (`ticket.*` topics) are ingested like conversations under the id ``ticket:<id>``.
`conversation.deleted` erases the conversation; `conversation_part.redacted` erases the parts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from connectors.errors import RecordError
from connectors.records import (
    InboundConversation,
    InboundMessage,
    Requester,
    as_list,
    as_object,
    require_id,
)
from connectors.text import clean_body
from core.models import Role

SOURCE = "intercom"
CUSTOMER_AUTHORS = {"user", "lead", "contact"}
AGENT_AUTHORS = {"admin"}
TICKET_PREFIX = "ticket:"
DELETED = "conversation.deleted"
REDACTED = "conversation_part.redacted"


def notification(payload: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """(notification id, item type, item id); the item is None for topics without one."""
    event_id = require_id(payload.get("id"), "notification id")
    data = as_object(payload.get("data"), "data")
    item = data.get("item")
    if not isinstance(item, dict):
        return event_id, None, None
    item_type = item.get("type")
    item_id = item.get("id")
    if item_type not in {"conversation", "ticket", "conversation_part"} or item_id is None:
        return event_id, None, None
    return event_id, str(item_type), require_id(item_id, f"{item_type} id")


def deletion(payload: dict[str, Any]) -> InboundConversation | None:
    """The events that remove something, answered without calling the API (the conversation is
    gone there, and `*.deleted` topics carry only identifying fields)."""
    topic = payload.get("topic")
    _, item_type, item_id = notification(payload)
    if item_id is None or topic not in {DELETED, REDACTED}:
        return None
    if topic == DELETED:
        return InboundConversation(source=SOURCE, external_id=item_id, deleted=True)
    item = payload["data"]["item"]
    if item_type == "conversation_part":  # the part itself, with its conversation's id
        conversation_id = require_id(item.get("conversation_id"), "conversation_id")
        return InboundConversation(
            source=SOURCE, external_id=conversation_id, redacted_ids=[item_id]
        )
    parts = _parts(item, "conversation_parts")
    return InboundConversation(
        source=SOURCE,
        external_id=item_id,
        redacted_ids=[require_id(as_object(p, "part").get("id"), "part id") for p in parts],
    )


def _parts(data: dict[str, Any], key: str) -> list[Any]:
    listing = data.get(key)
    if listing is None:
        return []
    return as_list(as_object(listing, key).get(key), key)


def _role(author: dict[str, Any], own: frozenset[str]) -> Role | None:
    kind = author.get("type")
    if str(author.get("id")) in own:
        return None  # our own integration writing back: never ingest ourselves
    if kind in AGENT_AUTHORS:
        return Role.AGENT
    if kind in CUSTOMER_AUTHORS:
        return Role.CUSTOMER
    return None


def _message(
    part: dict[str, Any], part_id: str, own: frozenset[str], fallback_time: object = None
) -> InboundMessage | None:
    author = as_object(part.get("author") or {}, "author")
    role = _role(author, own)
    body = part.get("body")
    if role is None or body is None:
        return None
    if not isinstance(body, str):
        raise RecordError(f"part {part_id} body is not text")
    text = clean_body(html=body) if "<" in body else clean_body(text=body)
    if not text:
        return None  # state changes, assignments without a reply
    created = part.get("created_at", fallback_time)
    if isinstance(created, bool) or not isinstance(created, int | float):
        raise RecordError(f"part {part_id} created_at is not a unix time")
    return InboundMessage(
        role=role,
        text=text,
        sent_at=datetime.fromtimestamp(int(created), tz=UTC),
        external_id=part_id,
        internal_note=part.get("part_type") == "note",
        author=author.get("name") if isinstance(author.get("name"), str) else None,
    )


def _requester(data: dict[str, Any], source: dict[str, Any]) -> Requester | None:
    author = source.get("author")
    if isinstance(author, dict) and author.get("type") in CUSTOMER_AUTHORS and author.get("id"):
        return Requester(str(author["id"]), author.get("email"), author.get("name"))
    contacts = _parts(data, "contacts")
    if contacts and isinstance(contacts[0], dict) and contacts[0].get("id"):
        first = contacts[0]
        return Requester(str(first["id"]), first.get("email"), first.get("name"))
    return None


def _transcript(
    external_id: str,
    data: dict[str, Any],
    parts: list[Any],
    opening: dict[str, Any] | None,
    own: frozenset[str],
) -> InboundConversation:
    record = InboundConversation(source=SOURCE, external_id=external_id, channel="chat")
    if opening is not None:
        message = _message(opening, f"{external_id}:source", own, data.get("created_at"))
        if opening.get("redacted"):
            record.redacted_ids.append(f"{external_id}:source")
        elif message is not None:
            record.messages.append(message)
    for raw in parts:
        part = as_object(raw, "part")
        part_id = require_id(part.get("id"), "part id")
        if part.get("redacted"):
            record.redacted_ids.append(part_id)
            continue
        message = _message(part, part_id, own)
        if message is not None:
            record.messages.append(message)
    return record


def conversation(data: dict[str, Any], own: frozenset[str] = frozenset()) -> InboundConversation:
    """The whole transcript: the opening message (source) and every part a person wrote."""
    conversation_id = require_id(data.get("id"), "conversation id")
    source = as_object(data.get("source") or {}, "source")
    record = _transcript(
        conversation_id, data, _parts(data, "conversation_parts"), source or None, own
    )
    record.subject = str(source.get("subject") or "")
    record.requester = _requester(data, source)
    return record


def ticket(data: dict[str, Any], own: frozenset[str] = frozenset()) -> InboundConversation:
    """A ticket: its parts (comments, notes, replies) like a conversation's; the description
    the customer filed opens it."""
    ticket_id = require_id(data.get("id"), "ticket id")
    external_id = f"{TICKET_PREFIX}{ticket_id}"
    attributes = as_object(data.get("ticket_attributes") or {}, "ticket_attributes")
    record = _transcript(external_id, data, _parts(data, "ticket_parts"), None, own)
    description = attributes.get("_default_description_")
    requester = _requester(data, {})
    if isinstance(description, str) and description.strip() and requester is not None:
        opening = {
            "body": description,
            "created_at": data.get("created_at"),
            "author": {"type": "user", "id": requester.external_id, "name": requester.name},
        }
        message = _message(opening, f"{external_id}:description", own)
        if message is not None:
            record.messages.insert(0, message)
    record.subject = str(attributes.get("_default_title_") or "")
    record.requester = requester
    return record
