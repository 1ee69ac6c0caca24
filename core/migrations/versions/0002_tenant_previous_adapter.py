"""tenant previous adapter

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 22:38:41.137897
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tenant", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_adapter_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_tenant_previous_adapter",
            "adapterversion",
            ["previous_adapter_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("tenant", schema=None) as batch_op:
        batch_op.drop_constraint("fk_tenant_previous_adapter", type_="foreignkey")
        batch_op.drop_column("previous_adapter_id")
