"""widget and console: agents, handoff state, customer ratings, review rows

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 04:16:03.938547
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.models.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("display_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("password_hash", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", core.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "email", name="uq_agent_tenant_email"),
    )
    op.create_table(
        "agentsession",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", core.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", core.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agent.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("agentsession", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agentsession_agent_id"), ["agent_id"], unique=False)

    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("escalated_at", core.models.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "escalation_reason", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column(
                "handoff_expired_at", core.models.types.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.add_column(
            sa.Column("failed_answers", sa.Integer(), nullable=False, server_default="0")
        )

    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("customer_rating", sa.Integer(), nullable=True))

    with op.batch_alter_table("suggestion", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reviewed_message_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_suggestion_reviewed_message_id"), ["reviewed_message_id"], unique=False
        )
        batch_op.create_foreign_key(
            "fk_suggestion_reviewed_message",
            "message",
            ["reviewed_message_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("suggestion", schema=None) as batch_op:
        batch_op.drop_constraint("fk_suggestion_reviewed_message", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_suggestion_reviewed_message_id"))
        batch_op.drop_column("reviewed_message_id")

    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_column("customer_rating")

    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.drop_column("failed_answers")
        batch_op.drop_column("handoff_expired_at")
        batch_op.drop_column("escalation_reason")
        batch_op.drop_column("escalated_at")

    with op.batch_alter_table("agentsession", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agentsession_agent_id"))

    op.drop_table("agentsession")
    op.drop_table("agent")
