"""erasure: tombstones, audit, and the conversation a webhook event is about

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 17:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.models.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "erasuretombstone",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("created_at", core.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "source", "kind", "external_id", name="uq_tombstone"),
    )
    op.create_table(
        "erasureaudit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("subject", sa.JSON(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("created_at", core.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("erasureaudit", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_erasureaudit_tenant_id"), ["tenant_id"], unique=False)
    with op.batch_alter_table("webhookevent", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "conversation_ref", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True
            )
        )
        batch_op.create_index(
            "ix_webhookevent_conversation",
            ["tenant_id", "provider", "conversation_ref"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("webhookevent", schema=None) as batch_op:
        batch_op.drop_index("ix_webhookevent_conversation")
        batch_op.drop_column("conversation_ref")
    with op.batch_alter_table("erasureaudit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_erasureaudit_tenant_id"))
    op.drop_table("erasureaudit")
    op.drop_table("erasuretombstone")
