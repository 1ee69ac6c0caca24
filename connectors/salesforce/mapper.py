"""Salesforce cases -> our records."""

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

SOURCE = "salesforce"


def case(data: dict[str, Any], own: frozenset[str] = frozenset()) -> InboundConversation:
    """`own`: user ids our integration writes comments as; those are never ingested."""
    if data.get("IsDeleted") is True:  # queryAll shows deleted cases: erase our copy
        return InboundConversation(
            source=SOURCE, external_id=require_id(data.get("Id"), "Case Id"), deleted=True
        )
    redacted: list[str] = []
    try:
        case_id = str(data["Id"])
        messages = []
        description = clean_body(text=data.get("Description"))
        if description:  # Web/Email-to-Case: the first customer message
            messages.append(
                InboundMessage(
                    Role.CUSTOMER,
                    description,
                    parse_timestamp(data["CreatedDate"]),
                    f"{case_id}:description",
                )
            )
        for email in data.get("emails", []):
            if email.get("IsDeleted") is True:
                redacted.append(str(email["Id"]))
                continue
            text = clean_body(text=email.get("TextBody"), html=email.get("HtmlBody"), email=True)
            if text:
                role = Role.CUSTOMER if email.get("Incoming") else Role.AGENT
                messages.append(
                    InboundMessage(
                        role, text, parse_timestamp(email["MessageDate"]), str(email["Id"])
                    )
                )
        for comment in data.get("comments", []):
            if comment.get("IsDeleted") is True:
                redacted.append(str(comment["Id"]))
                continue
            if str(comment.get("CreatedById")) in own:
                continue
            text = clean_body(text=comment.get("CommentBody"))
            if text:
                messages.append(
                    InboundMessage(
                        Role.AGENT,
                        text,
                        parse_timestamp(comment["CreatedDate"]),
                        str(comment["Id"]),
                        internal_note=not comment.get("IsPublished", False),
                    )
                )
    except (KeyError, TypeError) as exc:
        raise RecordError(f"not a Salesforce case: missing {exc}") from None
    return InboundConversation(
        source=SOURCE,
        external_id=case_id,
        channel=str(data.get("Origin") or "email").lower(),
        subject=str(data.get("Subject") or ""),
        messages=messages,
        redacted_ids=redacted,
        requester=Requester(
            str(data["ContactId"]) if data.get("ContactId") else None,
            data.get("SuppliedEmail") or data.get("ContactEmail"),
            data.get("SuppliedName"),
        )
        if data.get("ContactId") or data.get("SuppliedEmail") or data.get("ContactEmail")
        else None,
    )
