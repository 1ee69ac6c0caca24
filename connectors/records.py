"""What every connector hands to ingestion: one provider-neutral shape (crm-formats §1.1)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.errors import RecordError
from core.models.enums import ROLE_ALIASES, Role


def parse_role(value: object) -> Role:
    role = ROLE_ALIASES.get(str(value).strip().lower())
    if role is None:
        raise RecordError(
            f"unknown role {value!r} (expected one of {', '.join(sorted(ROLE_ALIASES))})"
        )
    return role


def parse_timestamp(value: object) -> datetime:
    """ISO-8601 with an offset; a naive time is refused rather than guessed."""
    text = str(value).strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RecordError(f"timestamp {text!r} is not ISO-8601") from None
    if parsed.tzinfo is None:
        raise RecordError(f"timestamp {text!r} has no time zone offset")
    return parsed


@dataclass(frozen=True)
class InboundMessage:
    role: Role
    text: str
    sent_at: datetime
    external_id: str
    internal_note: bool = False
    author: str | None = None


@dataclass(frozen=True)
class Requester:
    """The person a CRM conversation is with, as the provider knows them: linked to one of our
    customers, so erasure by email or provider id reaches conversations that came from a CRM."""

    external_id: str | None = None  # the provider's id of the person
    email: str | None = None
    name: str | None = None


@dataclass
class InboundConversation:
    source: str
    external_id: str
    channel: str = "chat"
    subject: str = ""
    messages: list[InboundMessage] = field(default_factory=list)
    requester: Requester | None = None
    # What the provider says was removed: these message ids (redacted parts, deleted comments),
    # or the whole conversation. Ingestion erases our copies and keeps tombstones.
    redacted_ids: list[str] = field(default_factory=list)
    deleted: bool = False
    # Messages the provider turned into internal notes after the fact (Zendesk "made private").
    private_ids: list[str] = field(default_factory=list)


def require_id(value: object, what: str) -> str:
    """A provider id as text; None, empty, booleans and containers are refused by name, since a
    missing id turned into "None" would make unrelated events collide."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RecordError(f"{what} is missing or not an id (got {type(value).__name__})")
    text = str(value).strip()
    if not text:
        raise RecordError(f"{what} is empty")
    return text


def as_object(value: object, what: str) -> dict[str, Any]:
    """A JSON object where the provider promises one; anything else is a RecordError."""
    if not isinstance(value, dict):
        raise RecordError(f"{what} is not an object (got {type(value).__name__})")
    return value


def as_list(value: object, what: str) -> list[Any]:
    """A JSON array where the provider promises one (absent means empty)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecordError(f"{what} is not a list (got {type(value).__name__})")
    return value


def content_id(*parts: object) -> str:
    """A stable message id for sources that give none: the same row always gets the same id,
    so importing a file twice stores nothing twice."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:32]
