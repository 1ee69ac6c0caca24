"""The tenant's help center over REST (tenant API key): upload, list, delete, sync status.

Uploads are added or updated by document id and never delete anything (a folder sync from the
command line does that for its own folder); a re-upload of the same text changes nothing.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import PurePath
from typing import Annotated

from fastapi import APIRouter, File, HTTPException, UploadFile, status
from pydantic import BaseModel
from sqlalchemy import func
from sqlmodel import select
from starlette.concurrency import run_in_threadpool

from chat_service.deps import CurrentTenant, ServicesDep, SessionDep
from core.crud import knowledge as store
from core.models import KnowledgeChunk, KnowledgeDocument
from knowledge import document_from_file, sync_documents

router = APIRouter(prefix="/v1/knowledge", tags=["knowledge"])
API_SOURCE = "api"
MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_FILES = 200


class DocumentPublic(BaseModel):
    doc_id: str
    title: str
    status: str
    superseded_by: str | None
    updated: date | None
    url: str | None
    source: str
    chunk_count: int
    indexed_at: datetime


class UploadResult(BaseModel):
    added: list[str]
    changed: list[str]
    unchanged: list[str]
    chunks: int


class SourceStatus(BaseModel):
    source: str
    documents: int
    last_indexed_at: datetime | None


class KnowledgeStatus(BaseModel):
    revision: int
    documents: int
    current: int
    chunks: int
    sources: list[SourceStatus]


@router.post("/documents", response_model=UploadResult, status_code=status.HTTP_201_CREATED)
async def upload_documents(
    services: ServicesDep,
    tenant: CurrentTenant,
    files: Annotated[list[UploadFile], File(description="Markdown, HTML or plain-text files")],
) -> UploadResult:
    """Add or update documents; the id is the front-matter `id`, else the file name's stem."""
    if len(files) > MAX_FILES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"at most {MAX_FILES} files at once")
    documents = []
    for upload in files:
        name = PurePath(upload.filename or "document.txt").name
        raw = await upload.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise HTTPException(
                status.HTTP_413_CONTENT_TOO_LARGE, f"{name}: larger than {MAX_FILE_BYTES} bytes"
            )
        documents.append(document_from_file(name, raw, name))
    assert tenant.id is not None
    report = await run_in_threadpool(
        sync_documents,
        services.db,
        tenant_id=tenant.id,
        source=API_SOURCE,
        documents=documents,
        embeddings=services.knowledge.embeddings,
        remove_missing=False,
    )
    return UploadResult(
        added=report.added, changed=report.changed, unchanged=report.unchanged, chunks=report.chunks
    )


@router.get("/documents", response_model=list[DocumentPublic])
def list_documents(session: SessionDep, tenant: CurrentTenant) -> list[DocumentPublic]:
    assert tenant.id is not None
    rows = store.list_documents(session=session, tenant_id=tenant.id)
    return [DocumentPublic.model_validate(row, from_attributes=True) for row in rows]


@router.delete("/documents/{doc_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_document(doc_id: str, session: SessionDep, tenant: CurrentTenant) -> None:
    """Answers stop citing it at once (every process sees the new revision)."""
    assert tenant.id is not None
    store.remove_document(session=session, tenant_id=tenant.id, doc_id=doc_id)


@router.get("/status", response_model=KnowledgeStatus)
def knowledge_status(session: SessionDep, tenant: CurrentTenant) -> KnowledgeStatus:
    """What is indexed, per source, and when each source last changed."""
    assert tenant.id is not None
    documents = store.list_documents(session=session, tenant_id=tenant.id)
    chunks = session.exec(
        select(func.count())
        .select_from(KnowledgeChunk)
        .where(KnowledgeChunk.tenant_id == tenant.id)
    ).one()
    sources: dict[str, list[KnowledgeDocument]] = {}
    for document in documents:
        sources.setdefault(document.source, []).append(document)
    return KnowledgeStatus(
        revision=store.knowledge_revision(session=session, tenant_id=tenant.id) or 0,
        documents=len(documents),
        current=sum(d.status == "current" for d in documents),
        chunks=chunks,
        sources=[
            SourceStatus(
                source=name,
                documents=len(docs),
                last_indexed_at=max(d.indexed_at for d in docs),
            )
            for name, docs in sorted(sources.items())
        ],
    )
