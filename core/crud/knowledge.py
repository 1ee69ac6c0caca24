"""A tenant's help-center documents and chunks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date

import sqlalchemy as sa
from sqlmodel import Session, col, delete, select

from core.errors import NotFoundError
from core.models import KnowledgeChunk, KnowledgeDocument, Tenant, utcnow
from core.models.knowledge import CURRENT


def list_documents(
    *, session: Session, tenant_id: int, source: str | None = None
) -> list[KnowledgeDocument]:
    query = select(KnowledgeDocument).where(KnowledgeDocument.tenant_id == tenant_id)
    if source is not None:
        query = query.where(KnowledgeDocument.source == source)
    return list(session.exec(query.order_by(col(KnowledgeDocument.doc_id))))


def knowledge_sources(*, session: Session, tenant_id: int) -> list[str]:
    rows = session.exec(
        select(KnowledgeDocument.source)
        .where(KnowledgeDocument.tenant_id == tenant_id)
        .distinct()
        .order_by(col(KnowledgeDocument.source))
    )
    return list(rows)


def put_document(
    *,
    session: Session,
    tenant_id: int,
    source: str,
    doc_id: str,
    title: str,
    body: str,
    content_hash: str,
    embedder: str,
    updated: date | None,
    status: str,
    superseded_by: str | None,
    url: str | None,
    chunks: Sequence[KnowledgeChunk],
) -> KnowledgeDocument:
    """Insert or replace a document and all its chunks (the chunks' document_id is set here)."""
    document = session.exec(
        select(KnowledgeDocument).where(
            KnowledgeDocument.tenant_id == tenant_id, KnowledgeDocument.doc_id == doc_id
        )
    ).first()
    if document is None:
        document = KnowledgeDocument(
            tenant_id=tenant_id,
            doc_id=doc_id,
            title=title,
            body=body,
            content_hash=content_hash,
            embedder=embedder,
        )
    else:
        session.exec(delete(KnowledgeChunk).where(col(KnowledgeChunk.document_id) == document.id))
    document.source = source
    document.title = title
    document.body = body
    document.content_hash = content_hash
    document.embedder = embedder
    document.updated = updated
    document.status = status
    document.superseded_by = superseded_by
    document.url = url
    document.chunk_count = len(chunks)
    document.indexed_at = utcnow()
    session.add(document)
    session.flush()
    for chunk in chunks:
        chunk.tenant_id = tenant_id
        chunk.document_id = document.id  # type: ignore[assignment]
        session.add(chunk)
    return document


def delete_documents(*, session: Session, tenant_id: int, doc_ids: Iterable[str]) -> list[str]:
    """Delete those of these documents that exist; their ids, sorted."""
    ids = list(doc_ids)
    if not ids:
        return []
    rows = session.exec(
        select(KnowledgeDocument.id, KnowledgeDocument.doc_id).where(
            KnowledgeDocument.tenant_id == tenant_id, col(KnowledgeDocument.doc_id).in_(ids)
        )
    ).all()
    keys = [key for key, _ in rows]
    if keys:
        session.exec(delete(KnowledgeChunk).where(col(KnowledgeChunk.document_id).in_(keys)))
        session.exec(delete(KnowledgeDocument).where(col(KnowledgeDocument.id).in_(keys)))
    return sorted(doc_id for _, doc_id in rows)


def remove_document(*, session: Session, tenant_id: int, doc_id: str) -> None:
    if not delete_documents(session=session, tenant_id=tenant_id, doc_ids=[doc_id]):
        raise NotFoundError(f"no knowledge document {doc_id!r}")
    bump_revision(session=session, tenant_id=tenant_id)


def bump_revision(*, session: Session, tenant_id: int) -> None:
    """Tell every serving process to rebuild this tenant's index (atomic on both backends)."""
    session.execute(
        sa.update(Tenant)
        .where(col(Tenant.id) == tenant_id)
        .values(knowledge_revision=col(Tenant.knowledge_revision) + 1)
    )


def knowledge_revision(*, session: Session, tenant_id: int) -> int | None:
    return session.exec(select(Tenant.knowledge_revision).where(Tenant.id == tenant_id)).first()


def indexed_chunks(
    *, session: Session, tenant_id: int
) -> list[tuple[KnowledgeDocument, KnowledgeChunk]]:
    """The chunks answers may come from: current documents only, in document order."""
    query = (
        select(KnowledgeDocument, KnowledgeChunk)
        .join(KnowledgeChunk, col(KnowledgeChunk.document_id) == KnowledgeDocument.id)
        .where(KnowledgeDocument.tenant_id == tenant_id, KnowledgeDocument.status == CURRENT)
        .order_by(col(KnowledgeDocument.doc_id), col(KnowledgeChunk.ordinal))
    )
    return [(d, c) for d, c in session.exec(query)]
