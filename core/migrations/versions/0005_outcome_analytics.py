"""outcome analytics: conversation facts, daily rollups, language and tier segments

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 04:54:22.505430
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.models.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outcomerollup",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("adapter_key", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("language", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("tier", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("sums", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
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
    )
    with op.batch_alter_table("outcomerollup", schema=None) as batch_op:
        batch_op.create_index("ix_outcome_rollup_tenant_day", ["tenant_id", "day"], unique=False)

    op.create_table(
        "conversationfact",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.JSON(), nullable=False),
        sa.Column("measures", sa.JSON(), nullable=False),
        sa.Column("computed_at", core.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversation.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("conversation_id"),
    )
    with op.batch_alter_table("conversationfact", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_conversationfact_tenant_id"), ["tenant_id"], unique=False
        )

    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("language", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )

    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("tier", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.drop_column("tier")

    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.drop_column("language")

    with op.batch_alter_table("conversationfact", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversationfact_tenant_id"))

    op.drop_table("conversationfact")
    with op.batch_alter_table("outcomerollup", schema=None) as batch_op:
        batch_op.drop_index("ix_outcome_rollup_tenant_day")

    op.drop_table("outcomerollup")
