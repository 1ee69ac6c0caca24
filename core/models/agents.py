"""Support agents who sign in to the console, and their sessions."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from core.models.types import UTCDateTime, utcnow


class Agent(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("tenant_id", "email", name="uq_agent_tenant_email"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", ondelete="CASCADE")
    email: str = Field(max_length=320)
    display_name: str = Field(max_length=200)
    # argon2id hash (argon2-cffi); the password itself is never stored.
    password_hash: str = Field(max_length=200)
    disabled: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AgentSession(SQLModel, table=True):
    """A console sign-in. The cookie holds a random token; only its hash is stored, so a leaked
    database does not log anyone in."""

    id: int | None = Field(default=None, primary_key=True)
    agent_id: int = Field(foreign_key="agent.id", ondelete="CASCADE", index=True)
    token_hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
