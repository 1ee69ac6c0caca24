"""What every connector hands to ingestion: one provider-neutral shape (crm-formats §1.1)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

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


@dataclass
class InboundConversation:
    source: str
    external_id: str
    channel: str = "chat"
    subject: str = ""
    messages: list[InboundMessage] = field(default_factory=list)


def content_id(*parts: object) -> str:
    """A stable message id for sources that give none: the same row always gets the same id,
    so importing a file twice stores nothing twice."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:32]
