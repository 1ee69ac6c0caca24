"""Zendesk ticket events -> our records."""

from __future__ import annotations

from typing import Any

from connectors.errors import RecordError
from connectors.records import InboundConversation, InboundMessage, parse_timestamp
from connectors.text import clean_body
from core.models import Role

SOURCE = "zendesk"
COMMENT_ADDED = "zen:event-type:ticket.comment_added"


def map_event(
    payload: dict[str, Any], own_authors: frozenset[str] = frozenset()
) -> tuple[str, InboundConversation | None]:
    """(event id, record); record is None for event types that carry no message and for
    comments written by our own integration (``own_authors``)."""
    try:
        event_id = str(payload["id"])
        if payload.get("type") != COMMENT_ADDED:
            return event_id, None
        detail, comment = payload["detail"], payload["event"]["comment"]
        author = comment.get("author") or {}
        channel = str((detail.get("via") or {}).get("channel") or "email")
        text = clean_body(
            text=comment.get("plain_body") or comment.get("body"),
            html=comment.get("html_body"),
            email=channel == "email",
        )
    except (KeyError, TypeError) as exc:
        raise RecordError(f"not a Zendesk event: missing {exc}") from None
    if not text or str(author.get("id")) in own_authors:
        return event_id, None
    message = InboundMessage(
        role=Role.AGENT if author.get("is_staff") else Role.CUSTOMER,
        text=text,
        sent_at=parse_timestamp(payload.get("time") or detail.get("updated_at") or ""),
        external_id=str(comment["id"]),
        internal_note=not comment.get("is_public", True),
        author=author.get("name"),
    )
    return event_id, InboundConversation(
        source=SOURCE,
        external_id=str(detail["id"]),
        channel=channel,
        subject=str(detail.get("subject") or ""),
        messages=[message],
    )


def map_ticket(
    ticket: dict[str, Any],
    comments: list[dict[str, Any]],
    users: dict[str, dict[str, Any]],
    own_authors: frozenset[str] = frozenset(),
) -> InboundConversation:
    """A ticket and its comments from the REST API; ids match the webhook's, so a comment
    seen by both paths is stored once."""
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
    return InboundConversation(
        source=SOURCE,
        external_id=str(ticket["id"]),
        channel=channel,
        subject=str(ticket.get("subject") or ""),
        messages=messages,
    )
