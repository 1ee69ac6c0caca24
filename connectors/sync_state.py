"""What every pull from a provider's API starts from: the tenant's credentials for it, and the
cursor where the last pull stopped (one SyncCursor row per tenant and key)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import Session, select

from connectors.errors import SyncError
from core.crud.tenants import get_tenant_by_slug
from core.db import session_scope
from core.models import SyncCursor, utcnow
from core.settings import Settings


def provider_access(
    *,
    db: DbEngine,
    settings: Settings,
    provider: str,
    tenant_slug: str,
    available: Iterable[str],
    what: str,
) -> tuple[dict[str, str], int]:
    """(API credentials, tenant id), or a SyncError that says what is missing."""
    names = sorted(available)
    if provider not in names:
        raise SyncError(f"{what} is not available for {provider!r} (available: {', '.join(names)})")
    credentials = settings.connector_credentials.get(f"{tenant_slug}/{provider}")
    if not credentials:
        raise SyncError(f"no {provider} API credentials configured for {tenant_slug}")
    with session_scope(db) as session:
        tenant = get_tenant_by_slug(session=session, slug=tenant_slug)
        if tenant is None or tenant.id is None:
            raise SyncError(f"tenant {tenant_slug!r} not found")
        return credentials, tenant.id


def load_cursor(session: Session, tenant_id: int, key: str) -> SyncCursor | None:
    return session.exec(
        select(SyncCursor).where(SyncCursor.tenant_id == tenant_id, SyncCursor.provider == key)
    ).first()


def save_cursor(session: Session, tenant_id: int, key: str, cursor: str) -> None:
    row = load_cursor(session, tenant_id, key) or SyncCursor(
        tenant_id=tenant_id, provider=key, cursor=cursor
    )
    row.cursor, row.updated_at = cursor, utcnow()
    session.add(row)
