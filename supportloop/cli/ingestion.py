"""Conversation logs in: `import FILE`, `connectors sync`, `connectors replay`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

from connectors.backfill import sync
from connectors.errors import ConnectorError
from connectors.file_import import import_file
from connectors.webhooks import replay
from core.crud.tenants import require_tenant
from core.db import session_scope
from core.errors import DomainError
from core.settings import get_settings
from supportloop.cli.terminal import TenantOption, console, database, failing_on

connectors_app = typer.Typer(help="CRM connectors.")


def import_conversations(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help=".jsonl or .csv")],
    tenant: TenantOption,
    source: Annotated[str, typer.Option(help="Source system recorded on every row")] = "import",
) -> None:
    """Import conversation logs (generic conversation JSONL, or CSV with one message a row)."""
    db = database()
    with failing_on(DomainError), session_scope(db) as session:
        tenant_id = require_tenant(session=session, slug=tenant).id
    assert tenant_id is not None
    columns = (TextColumn("importing {task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(file.name, total=None)
        report = import_file(
            db=db,
            tenant_id=tenant_id,
            path=file,
            source=source,
            on_progress=lambda n: progress.advance(task, n),
        )
    for line, reason in report.errors:
        console.print(f"[yellow]line {line}: {reason} (skipped)")
    console.print(
        f"{report.conversations_seen} conversations read, {report.conversations_created} new; "
        f"{report.messages_created} messages stored, {report.messages_skipped} already there; "
        f"{len(report.errors)} bad lines skipped"
    )


@connectors_app.command("replay")
def connectors_replay(
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant")] = None,
) -> None:
    """Re-run dead-lettered and failed webhook events now (safe to run twice)."""
    settings = get_settings()
    done, failing = replay(db=database(settings), settings=settings, tenant_slug=tenant)
    console.print(f"{done} events processed, {failing} still failing")


@connectors_app.command("sync")
def connectors_sync(
    provider: str,
    tenant: TenantOption,
    since: Annotated[
        datetime | None, typer.Option(help="Start here instead of the stored cursor (UTC date)")
    ] = None,
) -> None:
    """Backfill from the provider's incremental API; resumes from the stored cursor."""
    settings = get_settings()
    db = database(settings)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=console) as progress:
        task = progress.add_task(f"{provider}: starting", total=None)
        try:
            report = sync(
                db=db,
                settings=settings,
                provider=provider,
                tenant_slug=tenant,
                since=since.replace(tzinfo=UTC) if since and since.tzinfo is None else since,
                on_page=lambda r: progress.update(
                    task,
                    description=f"{provider}: page {r.pages}, {r.conversations} conversations, "
                    f"{r.messages_created} new messages",
                ),
            )
        except ConnectorError as exc:
            console.print(f"[red]{exc}\nThe cursor is saved: run the same command again to resume.")
            raise typer.Exit(1) from exc
    console.print(
        f"{'resumed; ' if report.resumed else ''}{report.pages} pages, {report.conversations} "
        f"conversations, {report.messages_created} new messages, {report.messages_skipped} already there"
    )
