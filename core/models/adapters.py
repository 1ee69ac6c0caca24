"""The adapter registry: where training publishes and serving reads.

chat_service and finetune_loop meet only here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Field, SQLModel

from core.models.enums import AdapterStatus, TrainingRunStatus
from core.models.types import UTCDateTime, utcnow


class TrainingRun(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", ondelete="CASCADE", index=True)
    status: str = Field(default=TrainingRunStatus.QUEUED, sa_type=sa.String(16))
    window_start: datetime | None = Field(default=None, sa_type=UTCDateTime)
    window_end: datetime | None = Field(default=None, sa_type=UTCDateTime)
    config: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    dataset_card: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    error: str | None = Field(default=None, sa_type=sa.Text)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class NightlyClaim(SQLModel, table=True):
    """One tenant's nightly run for one night, claimed by the first scheduler to get there:
    however many workers and hosts schedule the night, the unique key lets one run it."""

    __table_args__ = (sa.UniqueConstraint("tenant_id", "night", name="uq_nightly_claim"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", ondelete="CASCADE")
    night: str = Field(max_length=10)  # the schedule's date, in its time zone (YYYY-MM-DD)
    claimed_by: str = Field(max_length=200)  # host and process id
    claimed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AdapterVersion(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", ondelete="CASCADE", index=True)
    # Never reused: vLLM caches prefixes by adapter name, so new weights need a new name.
    name: str = Field(sa_column=sa.Column(sa.String(128), nullable=False, unique=True))
    base_model: str = Field(max_length=200)
    path: str = Field(max_length=1000)
    sha256: str = Field(max_length=64)
    status: str = Field(default=AdapterStatus.CANDIDATE, sa_type=sa.String(16))
    status_reason: str | None = Field(default=None, sa_type=sa.Text)
    metrics: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    tainted: bool = Field(default=False, description="Trained on data since erased.")
    parent_id: int | None = Field(
        default=None, foreign_key="adapterversion.id", ondelete="SET NULL"
    )
    training_run_id: int | None = Field(
        default=None, foreign_key="trainingrun.id", ondelete="SET NULL"
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    activated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AdapterLineage(SQLModel, table=True):
    """Which messages trained which adapter version (for erasure requests)."""

    adapter_version_id: int = Field(
        foreign_key="adapterversion.id", ondelete="CASCADE", primary_key=True
    )
    message_id: int = Field(foreign_key="message.id", ondelete="CASCADE", primary_key=True)
    customer_id: int | None = Field(default=None, index=True)
