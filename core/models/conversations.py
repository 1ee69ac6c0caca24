"""Customers, conversations, messages and the bot's suggestions to agents."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Field, SQLModel

from core.models.enums import ConversationStatus, SuggestionStatus
from core.models.types import UTCDateTime, utcnow

NATIVE_SOURCE = "supportloop"  # conversations that started in our own widget


class Customer(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", ondelete="CASCADE", index=True)
    display_name: str = Field(default="", max_length=200)
    email: str | None = Field(default=None, max_length=320)
    # Verified customers were identified by the tenant (signed JWT or CRM record); only their
    # conversations may train the model without extra review.
    verified: bool = False
    blocked: bool = False
    # The tenant's own customer tier (from its signed customer token), for segment analytics.
    tier: str | None = Field(default=None, max_length=32)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CustomerExternalId(SQLModel, table=True):
    """One customer can be known to several systems (widget visitor id, Zendesk user, …)."""

    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "source", "external_id", name="uq_customer_external_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", ondelete="CASCADE")
    customer_id: int = Field(foreign_key="customer.id", ondelete="CASCADE", index=True)
    source: str = Field(max_length=32)
    external_id: str = Field(max_length=200)


class Conversation(SQLModel, table=True):
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "source", "external_id", name="uq_conversation_source"),
        sa.CheckConstraint(
            "csat IS NULL OR (csat >= 1 AND csat <= 5)", name="ck_conversation_csat"
        ),
        sa.Index("ix_conversation_tenant_status_id", "tenant_id", "status", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", ondelete="CASCADE")
    customer_id: int | None = Field(
        default=None, foreign_key="customer.id", ondelete="SET NULL", index=True
    )
    channel: str = Field(default="widget", max_length=32)
    # BCP 47 language the customer's browser reported (e.g. "de-DE"), for segment analytics.
    language: str | None = Field(default=None, max_length=16)
    source: str = Field(default=NATIVE_SOURCE, max_length=32)
    external_id: str | None = Field(default=None, max_length=200)
    subject: str = Field(default="", max_length=500)
    status: str = Field(default=ConversationStatus.OPEN, sa_type=sa.String(16))
    assigned_agent: str | None = Field(default=None, max_length=200)
    csat: int | None = None
    # Handoff (chat_service/handoff.py): why and when the conversation asked for a human, and
    # when the customer was told nobody picked it up in time.
    escalated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    escalation_reason: str | None = Field(default=None, max_length=200)
    handoff_expired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Bot answers that failed (engine error, empty reply, rated down) since the last human
    # touch; enough of them escalate the conversation.
    failed_answers: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # Agents flag conversations that must never train the model (abuse, poisoning attempts).
    flagged: bool = False
    # A widget resumes its conversation with a random token; only its hash is stored.
    access_token_hash: str | None = Field(
        default=None, sa_column=sa.Column(sa.String(64), nullable=True, unique=True)
    )
    # Last sequence number handed out; incremented atomically when a message is appended.
    last_seq: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Message(SQLModel, table=True):
    __table_args__ = (
        sa.UniqueConstraint("conversation_id", "seq", name="uq_message_conversation_seq"),
        sa.UniqueConstraint("tenant_id", "source", "external_id", name="uq_message_source"),
        sa.UniqueConstraint("conversation_id", "client_id", name="uq_message_client_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", ondelete="CASCADE")
    conversation_id: int = Field(foreign_key="conversation.id", ondelete="CASCADE")
    seq: int
    role: str = Field(sa_type=sa.String(16))
    text: str = Field(sa_type=sa.Text)
    internal_note: bool = False
    author: str | None = Field(default=None, max_length=200, description="Agent name, if any.")
    client_id: str | None = Field(default=None, max_length=100, description="Sender's dedupe key.")
    source: str = Field(default=NATIVE_SOURCE, max_length=32)
    external_id: str | None = Field(default=None, max_length=200)
    adapter_version_id: int | None = Field(
        default=None, foreign_key="adapterversion.id", ondelete="SET NULL"
    )
    # The customer's thumbs on a bot reply: 1 up, -1 down. Rated-down replies go to the
    # console's review queue and never train as they are.
    customer_rating: int | None = None
    # A bot reply's grounding: the help-center sources shown under it, and whether the bot
    # declined because the documents were silent (knowledge gaps are built from those).
    grounding: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    sent_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Suggestion(SQLModel, table=True):
    """A bot draft shown to an agent; the agent's decision becomes a training example."""

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", ondelete="CASCADE")
    conversation_id: int = Field(foreign_key="conversation.id", ondelete="CASCADE", index=True)
    reply_to_message_id: int = Field(foreign_key="message.id", ondelete="CASCADE")
    draft_text: str = Field(sa_type=sa.Text)
    status: str = Field(default=SuggestionStatus.PENDING, sa_type=sa.String(16))
    final_text: str | None = Field(default=None, sa_type=sa.Text)
    reviewer: str | None = Field(default=None, max_length=200)
    reason: str | None = Field(default=None, max_length=1000)
    adapter_version_id: int | None = Field(
        default=None, foreign_key="adapterversion.id", ondelete="SET NULL"
    )
    sent_message_id: int | None = Field(default=None, foreign_key="message.id", ondelete="SET NULL")
    grounding: dict[str, Any] | None = Field(default=None, sa_type=JSON)  # as on Message
    # Set when the row is an agent's review of a bot reply already sent (the review queue)
    # rather than a draft shown before sending.
    reviewed_message_id: int | None = Field(
        default=None, foreign_key="message.id", ondelete="CASCADE", index=True
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    reviewed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
