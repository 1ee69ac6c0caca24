"""Bring a tenant's stored documents in line with a source: a folder, an upload, a provider.

Unchanged documents (same content hash, same embedding model) are skipped without embedding
anything; changed ones are re-chunked and re-embedded; documents the source no longer has are
deleted - only that source's, so a folder sync never deletes an article a connector brought.
One transaction per sync, and the tenant's knowledge revision is bumped once if anything
changed, so every serving process rebuilds its index exactly then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine as DbEngine

from core.crud import knowledge as store
from core.db import session_scope
from core.models import KnowledgeChunk
from knowledge.chunking import split_document
from knowledge.documents import DocumentError, SourceDocument
from knowledge.embeddings import MiniLMEmbeddings, to_blob

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (documents done, documents to index)


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    chunks: int = 0

    @property
    def touched(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    def summary(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.changed)} changed, {len(self.removed)} removed, "
            f"{len(self.unchanged)} unchanged ({self.chunks} chunks indexed)"
        )


def index_document(document: SourceDocument, embeddings: MiniLMEmbeddings) -> list[KnowledgeChunk]:
    chunks = split_document(document)
    vectors = embeddings.embed([c.embedding_text(document.title) for c in chunks])
    headings = embeddings.embed([c.heading_text(document.title) for c in chunks])
    unit_vectors = [embeddings.embed(c.units) for c in chunks]
    return [
        KnowledgeChunk(
            tenant_id=0,
            document_id=0,
            ordinal=c.ordinal,
            heading_path=c.heading_path,
            text=c.text,
            vector=to_blob(vector[None, :]),
            heading_vector=to_blob(heading[None, :]),
            units=c.units,
            unit_vectors=to_blob(units),
        )
        for c, vector, heading, units in zip(chunks, vectors, headings, unit_vectors, strict=True)
    ]


def sync_documents(
    db: DbEngine,
    *,
    tenant_id: int,
    source: str,
    documents: Iterable[SourceDocument],
    embeddings: MiniLMEmbeddings,
    remove_missing: bool = True,
    withdrawn: Iterable[str] = (),
    progress: Progress | None = None,
) -> SyncReport:
    """``remove_missing``: the documents are the whole source, so what it held before and no
    longer does is deleted. ``withdrawn``: ids to delete besides (a provider unpublished
    them). All in one transaction, with one revision bump if anything changed."""
    incoming: dict[str, SourceDocument] = {}
    for document in documents:
        if document.doc_id in incoming:
            raise DocumentError(f"two documents have the id {document.doc_id!r} in {source}")
        incoming[document.doc_id] = document
    report = SyncReport()
    with session_scope(db) as session:
        stored = {d.doc_id: d for d in store.list_documents(session=session, tenant_id=tenant_id)}
        todo = []
        for doc_id, document in incoming.items():
            old = stored.get(doc_id)
            if old is None:
                todo.append((document, report.added))
            elif (
                old.content_hash != document.content_hash
                or old.embedder != embeddings.name
                or old.source != source
            ):
                todo.append((document, report.changed))
            else:
                report.unchanged.append(doc_id)
        for done, (document, bucket) in enumerate(todo, start=1):
            chunks = index_document(document, embeddings)
            store.put_document(
                session=session,
                tenant_id=tenant_id,
                source=source,
                doc_id=document.doc_id,
                title=document.title,
                body=document.body,
                content_hash=document.content_hash,
                embedder=embeddings.name,
                updated=document.updated,
                status=document.status,
                superseded_by=document.superseded_by,
                url=document.url,
                chunks=chunks,
            )
            bucket.append(document.doc_id)
            report.chunks += len(chunks)
            if progress:
                progress(done, len(todo))
        gone = set(withdrawn) - set(incoming)
        if remove_missing:
            gone |= {d for d, row in stored.items() if row.source == source and d not in incoming}
        report.removed = store.delete_documents(session=session, tenant_id=tenant_id, doc_ids=gone)
        if report.touched:
            store.bump_revision(session=session, tenant_id=tenant_id)
    log.info("knowledge sync (tenant=%s source=%s): %s", tenant_id, source, report.summary())
    return report
