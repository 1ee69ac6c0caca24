"""Tenants and their API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Field, SQLModel

from core.models.enums import BotMode
from core.models.types import UTCDateTime, utcnow


def _adapter_pointer(constraint: str) -> Any:
    """A nullable reference to an adapter version. use_alter: tenant and adapterversion
    reference each other, so the foreign key is created after both tables."""
    return Field(
        default=None,
        sa_column=sa.Column(
            sa.Integer,
            sa.ForeignKey(
                "adapterversion.id", name=constraint, use_alter=True, ondelete="SET NULL"
            ),
            nullable=True,
        ),
    )


class Tenant(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    name: str = Field(default="", max_length=200)
    allowed_origins: list[str] = Field(default_factory=list, sa_type=JSON)
    bot_mode: str = Field(default=BotMode.AUTO, sa_type=sa.String(16))
    # The adapter currently answering this tenant's customers; NULL means the base model.
    active_adapter_id: int | None = _adapter_pointer("fk_tenant_active_adapter")
    # The version active before the current one: kept loaded, so rollback is instant.
    previous_adapter_id: int | None = _adapter_pointer("fk_tenant_previous_adapter")
    # Bumped whenever the tenant's help-center documents change: every serving process
    # rebuilds its in-memory index for the tenant when it sees a new value.
    knowledge_revision: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ApiKey(SQLModel, table=True):
    """Only a hash is stored; the key itself is shown once, when created."""

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", ondelete="CASCADE", index=True)
    key_hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    prefix: str = Field(max_length=16, description="First characters, to tell keys apart in a UI.")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
