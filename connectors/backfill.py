"""Backfill: walk a provider's incremental API from a stored cursor.

The cursor is saved after every page, in the same transaction as that page's messages, so a
sync that crashes (or whose provider goes away) resumes at the page it was on; re-reading part
of a page is harmless because ingestion is idempotent. The same ids as the webhooks are used,
so backfill and webhook deliveries that overlap never create duplicates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import Session, select

from connectors.ingest import ingest_conversation
from connectors.zendesk.client import ZendeskClient
from connectors.zendesk.mapper import map_ticket
from core.crud.tenants import get_tenant_by_slug
from core.db import session_scope
from core.models import SyncCursor, utcnow
from core.settings import Settings

log = logging.getLogger(__name__)
SYNCABLE = ("zendesk",)


class SyncError(RuntimeError):
    pass


@dataclass
class SyncReport:
    pages: int = 0
    conversations: int = 0
    messages_created: int = 0
    messages_skipped: int = 0
    resumed: bool = False


def _load_cursor(session: Session, tenant_id: int, provider: str) -> SyncCursor | None:
    return session.exec(
        select(SyncCursor).where(SyncCursor.tenant_id == tenant_id, SyncCursor.provider == provider)
    ).first()


def _save_cursor(session: Session, tenant_id: int, provider: str, cursor: str) -> None:
    row = _load_cursor(session, tenant_id, provider) or SyncCursor(
        tenant_id=tenant_id, provider=provider, cursor=cursor
    )
    row.cursor, row.updated_at = cursor, utcnow()
    session.add(row)


def sync(
    *,
    db: DbEngine,
    settings: Settings,
    provider: str,
    tenant_slug: str,
    since: datetime | None = None,
    on_page: Callable[[SyncReport], None] | None = None,
) -> SyncReport:
    if provider not in SYNCABLE:
        raise SyncError(
            f"backfill is not available for {provider!r} (available: {', '.join(SYNCABLE)})"
        )
    credentials = settings.connector_credentials.get(f"{tenant_slug}/{provider}")
    if not credentials:
        raise SyncError(f"no {provider} API credentials configured for {tenant_slug}")
    with session_scope(db) as session:
        tenant = get_tenant_by_slug(session=session, slug=tenant_slug)
        if tenant is None or tenant.id is None:
            raise SyncError(f"tenant {tenant_slug!r} not found")
        stored = _load_cursor(session, tenant.id, provider)
    tenant_id = tenant.id
    client = ZendeskClient(api_base=credentials["api_base"], token=credentials["token"])
    own = frozenset(settings.connector_integration_users.get(f"{tenant_slug}/{provider}", []))
    report = SyncReport(resumed=stored is not None and since is None)
    cursor = stored.cursor if stored is not None and since is None else None
    start_time = int(since.timestamp()) if since else 0
    while True:
        page = client.ticket_page(cursor=cursor, start_time=start_time)
        records = []
        for ticket in page.get("tickets", []):
            comments, users = client.comments(str(ticket["id"]))
            records.append(map_ticket(ticket, comments, users, own))
        with session_scope(db) as session:
            for record in records:
                result = ingest_conversation(session=session, tenant_id=tenant_id, record=record)
                report.messages_created += result.messages_created
                report.messages_skipped += result.messages_skipped
            if page.get("after_cursor"):
                _save_cursor(session, tenant_id, provider, str(page["after_cursor"]))
        report.pages += 1
        report.conversations += len(records)
        if on_page:
            on_page(report)
        log.info(
            "sync tenant=%s provider=%s page=%d tickets=%d",
            tenant_slug,
            provider,
            report.pages,
            len(records),
        )
        if page.get("end_of_stream") or not page.get("after_cursor"):
            return report
        cursor = str(page["after_cursor"])
