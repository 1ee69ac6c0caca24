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
from connectors.intercom import mapper as intercom_mapper
from connectors.intercom.client import fetch_conversation, search_conversations
from connectors.records import InboundConversation
from connectors.zendesk.client import ZendeskClient
from connectors.zendesk.mapper import map_ticket
from core.crud.tenants import get_tenant_by_slug
from core.db import session_scope
from core.models import SyncCursor, utcnow
from core.settings import Settings

log = logging.getLogger(__name__)
SINCE = "since:"  # a stored cursor that is a high-water mark rather than a page cursor


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


@dataclass
class Page:
    records: list[InboundConversation]
    next_cursor: str | None  # saved with the page's messages: where a later run continues
    done: bool


def _zendesk_page(
    api: dict[str, str], cursor: str | None, start_time: int, own: frozenset[str]
) -> Page:
    """Cursor-based incremental ticket export; the cursor stays valid after the end."""
    client = ZendeskClient(api_base=api["api_base"], token=api["token"])
    page = client.ticket_page(cursor=cursor, start_time=start_time)
    records = []
    for ticket in page.get("tickets", []):
        comments, users = client.comments(str(ticket["id"]))
        records.append(map_ticket(ticket, comments, users, own))
    after = str(page["after_cursor"]) if page.get("after_cursor") else None
    return Page(records, after, bool(page.get("end_of_stream")) or after is None)


def _intercom_page(
    api: dict[str, str], cursor: str | None, start_time: int, own: frozenset[str]
) -> Page:
    """Search by updated_at, then each conversation in full. Intercom's page cursors do not
    outlive the search, so the end of a run stores a high-water mark instead."""
    if cursor and cursor.startswith(SINCE):
        start_time, cursor = int(cursor.removeprefix(SINCE)), None
    page = search_conversations(
        api_base=api["api_base"],
        token=api["token"],
        updated_after=start_time,
        starting_after=cursor,
    )
    found = page.get("conversations", [])
    records = [
        intercom_mapper.conversation(
            fetch_conversation(
                api_base=api["api_base"], token=api["token"], conversation_id=str(c["id"])
            )
        )
        for c in found
    ]
    following = ((page.get("pages") or {}).get("next") or {}).get("starting_after")
    if following:
        return Page(records, str(following), False)
    newest = max([int(c.get("updated_at", 0)) for c in found] + [start_time])
    return Page(records, f"{SINCE}{newest}", True)


PAGERS: dict[str, Callable[[dict[str, str], str | None, int, frozenset[str]], Page]] = {
    "intercom": _intercom_page,
    "zendesk": _zendesk_page,
}


def sync(
    *,
    db: DbEngine,
    settings: Settings,
    provider: str,
    tenant_slug: str,
    since: datetime | None = None,
    on_page: Callable[[SyncReport], None] | None = None,
) -> SyncReport:
    if provider not in PAGERS:
        raise SyncError(
            f"backfill is not available for {provider!r} (available: {', '.join(sorted(PAGERS))})"
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
    own = frozenset(settings.connector_integration_users.get(f"{tenant_slug}/{provider}", []))
    report = SyncReport(resumed=stored is not None and since is None)
    cursor = stored.cursor if stored is not None and since is None else None
    start_time = int(since.timestamp()) if since else 0
    fetch_page = PAGERS[provider]
    while True:
        page = fetch_page(credentials, cursor, start_time, own)
        with session_scope(db) as session:
            for record in page.records:
                result = ingest_conversation(session=session, tenant_id=tenant_id, record=record)
                report.messages_created += result.messages_created
                report.messages_skipped += result.messages_skipped
            if page.next_cursor:
                _save_cursor(session, tenant_id, provider, page.next_cursor)
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
