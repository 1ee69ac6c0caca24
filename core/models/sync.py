"""Where each backfill stopped, so a crashed or interrupted sync resumes instead of restarting."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from core.models.types import UTCDateTime, utcnow


class SyncCursor(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("tenant_id", "provider", name="uq_sync_cursor"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", ondelete="CASCADE")
    provider: str = Field(max_length=32)
    cursor: str = Field(sa_type=sa.Text)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
