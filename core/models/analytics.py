"""Outcome analytics: one fact row per conversation, and daily rollups of those facts.

The dashboard reads only rollups, whose size grows with days x adapter versions x segments,
not with messages; analytics/outcomes.py keeps both up to date incrementally (see its docstring
for the metric definitions).
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import JSON, Field, SQLModel

from core.models.types import UTCDateTime, utcnow

# adapter_key values besides adapter version ids
BASE_MODEL_KEY = 0  # the bot answered with the base model
NO_BOT_KEY = -1  # the bot never answered (humans only, or imported history)


class ConversationFact(SQLModel, table=True):
    """What one conversation contributed to its rollup bucket, kept so that a change to the
    conversation can take the old contribution out before adding the new one."""

    id: int | None = Field(default=None, primary_key=True)
    # SET NULL, not CASCADE: an erased conversation's contribution must still be subtracted.
    conversation_id: int | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.Integer,
            sa.ForeignKey("conversation.id", ondelete="SET NULL"),
            unique=True,
            nullable=True,
        ),
    )
    tenant_id: int = Field(foreign_key="tenant.id", ondelete="CASCADE", index=True)
    bucket: dict[str, object] = Field(default_factory=dict, sa_type=JSON)
    measures: dict[str, float] = Field(default_factory=dict, sa_type=JSON)
    computed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class OutcomeRollup(SQLModel, table=True):
    """Sums of conversation measures per tenant, day, adapter version and segment."""

    __table_args__ = (
        sa.UniqueConstraint(
            "tenant_id",
            "day",
            "adapter_key",
            "channel",
            "language",
            "tier",
            "verified",
            name="uq_outcome_rollup_bucket",
        ),
        sa.Index("ix_outcome_rollup_tenant_day", "tenant_id", "day"),
    )

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", ondelete="CASCADE")
    day: date
    adapter_key: int
    channel: str = Field(max_length=32)
    language: str = Field(max_length=16)
    tier: str = Field(max_length=32)
    verified: bool
    sums: dict[str, float] = Field(default_factory=dict, sa_type=JSON)
