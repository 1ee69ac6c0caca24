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

from connectors.backfill_spec import Page, Pager
from connectors.chatwoot import backfill as chatwoot
from connectors.errors import SyncError
from connectors.freshdesk import backfill as freshdesk
from connectors.hubspot import backfill as hubspot
from connectors.ingest import ingest_conversation
from connectors.intercom import backfill as intercom
from connectors.salesforce import backfill as salesforce
from connectors.sync_state import load_cursor, provider_access, save_cursor
from connectors.zendesk import backfill as zendesk
from core.db import session_scope
from core.erasure import record_files, scrub_training_files
from core.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["PAGERS", "Page", "SyncError", "SyncReport", "sync"]

PAGERS: dict[str, Pager] = {
    "chatwoot": chatwoot.page,
    "freshdesk": freshdesk.page,
    "hubspot": hubspot.page,
    "intercom": intercom.page,
    "salesforce": salesforce.page,
    "zendesk": zendesk.page,
}


@dataclass
class SyncReport:
    pages: int = 0
    conversations: int = 0
    messages_created: int = 0
    messages_skipped: int = 0
    resumed: bool = False


def sync(
    *,
    db: DbEngine,
    settings: Settings,
    provider: str,
    tenant_slug: str,
    since: datetime | None = None,
    on_page: Callable[[SyncReport], None] | None = None,
) -> SyncReport:
    credentials, tenant_id = provider_access(
        db=db,
        settings=settings,
        provider=provider,
        tenant_slug=tenant_slug,
        available=PAGERS,
        what="backfill",
    )
    with session_scope(db) as session:
        stored = load_cursor(session, tenant_id, provider)
    own = frozenset(settings.connector_integration_users.get(f"{tenant_slug}/{provider}", []))
    report = SyncReport(resumed=stored is not None and since is None)
    cursor = stored.cursor if stored is not None and since is None else None
    start_time = int(since.timestamp()) if since else 0
    fetch_page = PAGERS[provider]
    while True:
        page = fetch_page(credentials, cursor, start_time, own)
        erasures = []
        with session_scope(db) as session:
            for record in page.records:
                result = ingest_conversation(
                    session=session,
                    tenant_id=tenant_id,
                    record=record,
                    origin=f"{provider} backfill",
                )
                report.messages_created += result.messages_created
                report.messages_skipped += result.messages_skipped
                if result.erased is not None:
                    erasures.append(result.erased)
            if page.next_cursor:
                save_cursor(session, tenant_id, provider, page.next_cursor)
        for erased in erasures:  # after the commit: the erased text leaves the training files
            scrub_training_files(settings.training_dir(tenant_slug), erased)
            with session_scope(db) as session:
                record_files(session, erased)
        report.pages += 1
        report.conversations += len(page.records)
        if on_page:
            on_page(report)
        log.info(
            "sync tenant=%s provider=%s page=%d conversations=%d",
            tenant_slug,
            provider,
            report.pages,
            len(page.records),
        )
        if page.done or not page.next_cursor:
            return report
        cursor = page.next_cursor
