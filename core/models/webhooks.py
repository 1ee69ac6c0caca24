"""Inbound webhook deliveries: the idempotency key and the dead-letter queue in one table."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from core.models.enums import WebhookEventStatus
from core.models.types import UTCDateTime, utcnow


class WebhookEvent(SQLModel, table=True):
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "provider", "event_id", name="uq_webhook_event"),
        sa.Index("ix_webhookevent_conversation", "tenant_id", "provider", "conversation_ref"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", ondelete="CASCADE")
    provider: str = Field(max_length=32)
    event_id: str = Field(max_length=200)
    body_hash: str = Field(max_length=64)
    # The provider's conversation id the event is about (as ingestion stores it), so an erasure
    # can find and wipe every raw body that carried the conversation.
    conversation_ref: str | None = Field(default=None, max_length=200)
    body: str = Field(default="", sa_type=sa.Text, description="Raw body, kept for replay.")
    status: str = Field(default=WebhookEventStatus.RECEIVED, sa_type=sa.String(16))
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    processed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
