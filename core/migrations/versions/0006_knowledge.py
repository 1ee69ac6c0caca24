"""knowledge: help-center documents and chunks, grounding of replies and suggestions

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 06:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import core.models.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "knowledgedocument",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("doc_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("updated", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("superseded_by", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("content_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("embedder", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("created_at", core.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("indexed_at", core.models.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "doc_id", name="uq_knowledge_document"),
    )
    with op.batch_alter_table("knowledgedocument", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_knowledgedocument_tenant_id"), ["tenant_id"], unique=False
        )

    op.create_table(
        "knowledgechunk",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("heading_path", sa.JSON(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("heading_vector", sa.LargeBinary(), nullable=False),
        sa.Column("units", sa.JSON(), nullable=False),
        sa.Column("unit_vectors", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["document_id"], ["knowledgedocument.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("knowledgechunk", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_knowledgechunk_document_id"), ["document_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_knowledgechunk_tenant_id"), ["tenant_id"], unique=False
        )

    with op.batch_alter_table("tenant", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("knowledge_revision", sa.Integer(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("grounding", sa.JSON(), nullable=True))
    with op.batch_alter_table("suggestion", schema=None) as batch_op:
        batch_op.add_column(sa.Column("grounding", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("suggestion", schema=None) as batch_op:
        batch_op.drop_column("grounding")
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_column("grounding")
    with op.batch_alter_table("tenant", schema=None) as batch_op:
        batch_op.drop_column("knowledge_revision")
    op.drop_table("knowledgechunk")
    op.drop_table("knowledgedocument")
