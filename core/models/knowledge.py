"""A tenant's help-center documents and the chunks its answers are grounded in.

The document row keeps the whole source text and a content hash, so a re-sync can tell what
changed without re-embedding anything; the chunk rows keep the vectors the retriever searches
(float32, little-endian, in a blob: the same on SQLite and PostgreSQL, no extension needed).
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import JSON, Field, SQLModel

from core.models.types import UTCDateTime, utcnow

CURRENT = "current"
SUPERSEDED = "superseded"


class KnowledgeDocument(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("tenant_id", "doc_id", name="uq_knowledge_document"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", ondelete="CASCADE", index=True)
    doc_id: str = Field(max_length=200, description="Front-matter id, else the file's stem.")
    # Where it came from: "files:<path>" (knowledge add), "api" (REST upload), or a provider;
    # a sync of one source never touches the documents of another.
    source: str = Field(default="files", max_length=500)
    title: str = Field(max_length=500)
    url: str | None = Field(default=None, max_length=2000)
    updated: date | None = None
    status: str = Field(default=CURRENT, sa_type=sa.String(16))
    superseded_by: str | None = Field(default=None, max_length=200)
    content_hash: str = Field(max_length=64)
    body: str = Field(sa_type=sa.Text, description="Markdown, as chunked.")
    embedder: str = Field(max_length=100, description="Model the chunk vectors come from.")
    chunk_count: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    indexed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class KnowledgeChunk(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", ondelete="CASCADE", index=True)
    document_id: int = Field(foreign_key="knowledgedocument.id", ondelete="CASCADE", index=True)
    ordinal: int
    heading_path: list[str] = Field(default_factory=list, sa_type=JSON)
    text: str = Field(sa_type=sa.Text)
    vector: bytes = Field(sa_type=sa.LargeBinary)
    # The title and heading path alone: what the help center says this part is about.
    heading_vector: bytes = Field(sa_type=sa.LargeBinary)
    # The chunk's sentences and table rows, and their vectors: how well the best of them
    # answers a question decides whether the documents answer it at all.
    units: list[str] = Field(default_factory=list, sa_type=JSON)
    unit_vectors: bytes = Field(sa_type=sa.LargeBinary)
