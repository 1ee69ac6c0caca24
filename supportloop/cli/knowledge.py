"""The help center answers are grounded in: `knowledge add | list | remove | sync`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from connectors.errors import ConnectorError
from connectors.help_center import FEEDS as ARTICLE_PROVIDERS
from connectors.help_center import sync_articles
from core.crud import knowledge as store
from core.crud.tenants import require_tenant
from core.db import session_scope
from core.errors import DomainError
from core.settings import get_settings
from knowledge import SyncReport, default_embeddings, read_tree, sync_documents
from supportloop.cli.terminal import TenantOption, console, database, failing_on

knowledge_app = typer.Typer(help="Help-center documents the bot answers from.")
FILES = "files:"


def _tenant_id(slug: str) -> int:
    with failing_on(DomainError), session_scope(database()) as session:
        tenant_id = require_tenant(session=session, slug=slug).id
    assert tenant_id is not None
    return tenant_id


def _sync_path(tenant_id: int, path: Path) -> SyncReport:
    """One folder or file is one source: re-adding it syncs exactly what it holds."""
    source = FILES + str(path.resolve())
    columns = (TextColumn("indexing {task.description}"), BarColumn(), MofNCompleteColumn())
    with failing_on(DomainError), Progress(*columns, console=console) as progress:
        task = progress.add_task(path.name, total=None)
        documents = list(read_tree(path)) if path.exists() else []
        return sync_documents(
            database(),
            tenant_id=tenant_id,
            source=source,
            documents=documents,
            embeddings=default_embeddings(),
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )


@knowledge_app.command("add")
def knowledge_add(
    path: Annotated[Path, typer.Argument(exists=True, help="A file or folder (.md, .html, .txt)")],
    tenant: TenantOption,
) -> None:
    """Index a file or a folder; adding it again syncs it (changed re-indexed, gone removed)."""
    report = _sync_path(_tenant_id(tenant), path)
    console.print(report.summary())


def _pull(provider: str, tenant: str) -> None:
    settings = get_settings()
    with failing_on(ConnectorError, DomainError), console.status(f"{provider}: articles…"):
        report = sync_articles(
            db=database(settings), settings=settings, provider=provider, tenant_slug=tenant
        )
    console.print(f"{provider} ({report.pages} pages): {report.knowledge.summary()}")


@knowledge_app.command("pull")
def knowledge_pull(
    provider: Annotated[str, typer.Argument(help="zendesk (Guide), intercom or freshdesk")],
    tenant: TenantOption,
) -> None:
    """Bring in the provider's help-center articles (incremental where the API allows)."""
    _pull(provider, tenant)


@knowledge_app.command("sync")
def knowledge_sync(tenant: TenantOption) -> None:
    """Re-read every file and folder added before (a folder that is gone removes its
    documents), and pull articles from every help-center provider configured for the tenant."""
    tenant_id = _tenant_id(tenant)
    with session_scope(database()) as session:
        sources = store.knowledge_sources(session=session, tenant_id=tenant_id)
    paths = [Path(s.removeprefix(FILES)) for s in sources if s.startswith(FILES)]
    providers = [
        p for p in ARTICLE_PROVIDERS if f"{tenant}/{p}" in get_settings().connector_credentials
    ]
    if not paths and not providers:
        console.print("nothing to sync: add a file or folder first (supportloop knowledge add)")
    for path in paths:
        console.print(f"{path}: {_sync_path(tenant_id, path).summary()}", soft_wrap=True)
    for provider in providers:
        _pull(provider, tenant)


@knowledge_app.command("list")
def knowledge_list(tenant: TenantOption) -> None:
    """The tenant's documents, with their status and chunk counts."""
    tenant_id = _tenant_id(tenant)
    with session_scope(database()) as session:
        documents = store.list_documents(session=session, tenant_id=tenant_id)
    for doc in documents:
        status = doc.status + (f" by {doc.superseded_by}" if doc.superseded_by else "")
        console.print(
            f"{doc.doc_id}  [dim]{status}, updated {doc.updated or '-'}, {doc.chunk_count} "
            f"chunks, from {doc.source}[/]\n    {doc.title}",
            soft_wrap=True,
            markup=True,
            highlight=False,
        )
    console.print(f"{len(documents)} documents")


@knowledge_app.command("remove")
def knowledge_remove(
    doc_id: Annotated[str, typer.Argument(help="Document id (see knowledge list)")],
    tenant: TenantOption,
) -> None:
    """Delete one document; answers stop citing it at once."""
    tenant_id = _tenant_id(tenant)
    with failing_on(DomainError), session_scope(database()) as session:
        store.remove_document(session=session, tenant_id=tenant_id, doc_id=doc_id)
    console.print(f"removed {doc_id}")
