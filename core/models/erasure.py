"""What was erased, and what must never come back.

A tombstone is keyed by the provider's own ids (a conversation, a message, a person), so a
replayed webhook or a later backfill that carries the same thing again is recognised and left
out. An audit row records each erasure without its content: who asked, why, what kind, how many
rows and files were touched.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Field, SQLModel

from core.models.types import UTCDateTime, utcnow


class TombstoneKind(StrEnum):
    CONVERSATION = "conversation"  # external_id: the provider's conversation/ticket id
    MESSAGE = "message"  # external_id: the provider's message/part/comment id
    PERSON = "person"  # external_id: the provider's id of the requester
    EMAIL = "email"  # external_id: sha256 of the lower-cased address; source "*"


class ErasureTombstone(SQLModel, table=True):
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "source", "kind", "external_id", name="uq_tombstone"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", ondelete="CASCADE")
    source: str = Field(max_length=32)
    kind: str = Field(sa_type=sa.String(16))
    external_id: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ErasureAudit(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", ondelete="CASCADE", index=True)
    actor: str = Field(max_length=200)  # "cli:alice", "intercom webhook notif_…"
    reason: str = Field(max_length=200)  # "privacy forget", "conversation.deleted", …
    # Which ids were erased (ours and the provider's, an email only as its hash), never text.
    subject: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    counts: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
