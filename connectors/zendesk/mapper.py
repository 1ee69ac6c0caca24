"""Zendesk ticket events -> our records."""

from __future__ import annotations

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

SOURCE = "zendesk"
EVENT = "zen:event-type:"
COMMENT_ADDED = f"{EVENT}ticket.comment_added"
COMMENT_REDACTED = f"{EVENT}ticket.comment_redacted"
COMMENT_MADE_PRIVATE = f"{EVENT}ticket.comment_made_private"
TICKET_DELETED = {f"{EVENT}ticket.soft_deleted", f"{EVENT}ticket.permanently_deleted"}
MESSAGING_ADDED = f"{EVENT}messaging_ticket.message_added"
# Messaging actors (developer.zendesk.com, "Ticket events" / messaging): end users are
# customers, agents are agents; triggers and the system write nothing a person said.
MESSAGING_ROLES = {"end_user": Role.CUSTOMER, "agent": Role.AGENT}


def _ticket(payload: dict[str, Any]) -> tuple[dict[str, Any], str]:
    detail = as_object(payload.get("detail"), "detail")
    return detail, require_id(detail.get("id"), "detail.id (the ticket id)")


def _requester(detail: dict[str, Any]) -> Requester | None:
    requester = detail.get("requester_id")
    return Requester(str(requester)) if isinstance(requester, str | int) and requester else None


def map_event(
    payload: dict[str, Any], own_authors: frozenset[str] = frozenset()
) -> tuple[str, InboundConversation | None]:
    """(event id, record); record is None for event types that carry no message and for
    comments written by our own integration (``own_authors``)."""
    event_id = require_id(payload.get("id"), "event id")
    kind = payload.get("type")
    if kind in TICKET_DELETED:
        _, ticket_id = _ticket(payload)
        return event_id, InboundConversation(source=SOURCE, external_id=ticket_id, deleted=True)
    if kind in {COMMENT_REDACTED, COMMENT_MADE_PRIVATE}:
        _, ticket_id = _ticket(payload)
        event = as_object(payload.get("event"), "event")
        comment = as_object(event.get("comment"), "event.comment")
        comment_id = require_id(comment.get("id"), "comment id")
        record = InboundConversation(source=SOURCE, external_id=ticket_id)
        if kind == COMMENT_REDACTED:
            record.redacted_ids.append(comment_id)
        else:
            record.private_ids.append(comment_id)
        return event_id, record
    if kind == MESSAGING_ADDED:
        return event_id, _messaging(payload, own_authors)
    if kind != COMMENT_ADDED:
        return event_id, None
    detail, ticket_id = _ticket(payload)
    comment = as_object(as_object(payload.get("event"), "event").get("comment"), "event.comment")
    author = as_object(comment.get("author") or {}, "comment.author")
    channel = str(as_object(detail.get("via") or {}, "detail.via").get("channel") or "email")
    text = clean_body(
        text=_text(comment.get("plain_body")) or _text(comment.get("body")),
        html=_text(comment.get("html_body")),
        email=channel == "email",
    )
    if not text or str(author.get("id")) in own_authors:
        return event_id, None
    message = InboundMessage(
        role=Role.AGENT if author.get("is_staff") else Role.CUSTOMER,
        text=text,
        sent_at=parse_timestamp(payload.get("time") or detail.get("updated_at") or ""),
        external_id=require_id(comment.get("id"), "comment id"),
        internal_note=comment.get("is_public", True) is False,
        author=_text(author.get("name")),
    )
    return event_id, InboundConversation(
        source=SOURCE,
        external_id=ticket_id,
        channel=channel,
        subject=str(detail.get("subject") or ""),
        messages=[message],
        requester=_requester(detail),
    )


def _text(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise RecordError(f"expected text, got {type(value).__name__}")
    return value


def _messaging(payload: dict[str, Any], own: frozenset[str]) -> InboundConversation | None:
    """A messaging (chat, WhatsApp, ...) message on a ticket."""
    detail, ticket_id = _ticket(payload)
    event = as_object(payload.get("event"), "event")
    actor = as_object(event.get("actor") or {}, "event.actor")
    message = as_object(event.get("message"), "event.message")
    role = MESSAGING_ROLES.get(str(actor.get("type")))
    text = clean_body(text=_text(message.get("body")))
    if role is None or not text or str(actor.get("id")) in own:
        return None
    return InboundConversation(
        source=SOURCE,
        external_id=ticket_id,
        channel="messaging",
        subject=str(detail.get("subject") or ""),
        messages=[
            InboundMessage(
                role=role,
                text=text,
                sent_at=parse_timestamp(payload.get("time") or detail.get("updated_at") or ""),
                external_id=require_id(message.get("id"), "message id"),
                author=_text(actor.get("name")),
            )
        ],
        requester=_requester(detail),
    )


def map_ticket(
    ticket: dict[str, Any],
    comments: list[dict[str, Any]],
    users: dict[str, dict[str, Any]],
    own_authors: frozenset[str] = frozenset(),
) -> InboundConversation:
    """A ticket and its comments from the REST API; ids match the webhook's, so a comment
    seen by both paths is stored once. The incremental export lists deleted tickets with
    status `deleted`: those erase our copy."""
    if ticket.get("status") == "deleted":
        return InboundConversation(
            source=SOURCE, external_id=require_id(ticket.get("id"), "ticket id"), deleted=True
        )
    channel = str((ticket.get("via") or {}).get("channel") or "email")
    messages = []
    for comment in comments:
        if str(comment.get("author_id")) in own_authors:
            continue
        author = users.get(str(comment.get("author_id")), {})
        text = clean_body(
            text=comment.get("plain_body") or comment.get("body"),
            html=comment.get("html_body"),
            email=channel == "email",
        )
        if not text:
            continue
        messages.append(
            InboundMessage(
                role=Role.CUSTOMER if author.get("role", "end-user") == "end-user" else Role.AGENT,
                text=text,
                sent_at=parse_timestamp(comment["created_at"]),
                external_id=str(comment["id"]),
                internal_note=not comment.get("public", True),
                author=author.get("name"),
            )
        )
    requester = users.get(str(ticket.get("requester_id")), {})
    return InboundConversation(
        source=SOURCE,
        external_id=str(ticket["id"]),
        channel=channel,
        subject=str(ticket.get("subject") or ""),
        messages=messages,
        requester=Requester(
            str(ticket["requester_id"]), requester.get("email"), requester.get("name")
        )
        if ticket.get("requester_id")
        else None,
    )
