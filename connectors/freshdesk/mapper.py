"""Freshdesk webhook payloads and tickets -> our records.

Freshdesk sends whatever template the admin configured and signs nothing. Our recommended
template carries ids only (the body is re-fetched from the API):
    {"freshdesk_webhook": {"ticket_id": "{{ticket.id}}", "triggered_event": "{{triggered_event}}"}}
"""

from __future__ import annotations

import hashlib
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

SOURCE = "freshdesk"
EMAIL_SOURCES = {1, 10}


def ticket_ref(payload: dict[str, Any], raw: bytes) -> tuple[str, str]:
    """(delivery id, ticket id). Freshdesk gives no delivery id: the body's hash stands in, so
    an exact re-delivery is a duplicate and a new change is a new event."""
    data = payload.get("freshdesk_webhook", payload)
    ticket_id = str(data.get("ticket_id") or "").strip() if isinstance(data, dict) else ""
    if not (ticket_id.isascii() and ticket_id.isdigit()):
        raise RecordError("missing or non-numeric ticket_id")
    return f"{ticket_id}:{hashlib.sha256(raw).hexdigest()[:32]}", ticket_id


def ticket(
    data: dict[str, Any], conversations: list[dict[str, Any]], own: frozenset[str] = frozenset()
) -> InboundConversation:
    """`own`: user ids our integration replies as; their conversations are never ingested."""
    if data.get("deleted") is True:  # in the trash: the business removed it
        return InboundConversation(
            source=SOURCE, external_id=require_id(data.get("id"), "ticket id"), deleted=True
        )
    try:
        ticket_id = str(data["id"])
        email = data.get("source") in EMAIL_SOURCES
        messages = []
        opening = clean_body(
            text=data.get("description_text"), html=data.get("description"), email=email
        )
        if opening:  # the first customer message is the ticket's description
            messages.append(
                InboundMessage(
                    role=Role.CUSTOMER,
                    text=opening,
                    sent_at=parse_timestamp(data["created_at"]),
                    external_id=f"{ticket_id}:description",
                )
            )
        for item in conversations:
            if str(item.get("user_id")) in own:
                continue
            text = clean_body(html=item.get("body"), email=email) or clean_body(
                text=item.get("body_text")
            )
            if not text:
                continue
            messages.append(
                InboundMessage(
                    role=Role.CUSTOMER if item.get("incoming") else Role.AGENT,
                    text=text,
                    sent_at=parse_timestamp(item["created_at"]),
                    external_id=str(item["id"]),
                    internal_note=bool(item.get("private")),
                )
            )
    except (KeyError, TypeError) as exc:
        raise RecordError(f"not a Freshdesk ticket: missing {exc}") from None
    return InboundConversation(
        source=SOURCE,
        external_id=ticket_id,
        channel="email" if email else "chat",
        subject=str(data.get("subject") or ""),
        messages=messages,
        requester=_requester(data),
    )


def _requester(data: dict[str, Any]) -> Requester | None:
    found = data.get("requester")
    person: dict[str, Any] = found if isinstance(found, dict) else {}
    requester_id = data.get("requester_id") or person.get("id")
    if not requester_id and not person.get("email"):
        return None
    return Requester(
        str(requester_id) if requester_id else None, person.get("email"), person.get("name")
    )
