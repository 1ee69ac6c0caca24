"""Tenants and API keys."""

from __future__ import annotations

import re

from sqlmodel import Session, select

from core.errors import ConflictError, InvalidError, NotFoundError
from core.models import ApiKey, BotMode, Tenant
from core.secrets import hash_token, new_token

SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
API_KEY_PREFIX = "slk"


class TenantExistsError(ConflictError):
    pass


def create_tenant(
    *,
    session: Session,
    slug: str,
    name: str = "",
    allowed_origins: list[str] | None = None,
    bot_mode: BotMode = BotMode.AUTO,
) -> tuple[Tenant, str]:
    """Create a tenant with its first API key; the key is returned once and never stored."""
    if not SLUG_PATTERN.match(slug):
        raise InvalidError(
            f"invalid tenant slug {slug!r}: use 1-63 lowercase letters, digits or '-', "
            "starting with a letter or digit"
        )
    if session.exec(select(Tenant).where(Tenant.slug == slug)).first() is not None:
        raise TenantExistsError(f"tenant {slug!r} already exists")
    tenant = Tenant(
        slug=slug,
        name=name or slug,
        allowed_origins=list(allowed_origins or []),
        bot_mode=bot_mode,
    )
    session.add(tenant)
    session.flush()
    return tenant, issue_api_key(session=session, tenant=tenant)


def issue_api_key(*, session: Session, tenant: Tenant) -> str:
    assert tenant.id is not None
    key = new_token(API_KEY_PREFIX)
    session.add(ApiKey(tenant_id=tenant.id, key_hash=hash_token(key), prefix=key[:10]))
    session.flush()
    return key


def get_tenant_by_slug(*, session: Session, slug: str) -> Tenant | None:
    return session.exec(select(Tenant).where(Tenant.slug == slug)).first()


def require_tenant(*, session: Session, slug: str) -> Tenant:
    tenant = get_tenant_by_slug(session=session, slug=slug)
    if tenant is None or tenant.id is None:
        raise NotFoundError(f"tenant {slug!r} not found")
    return tenant


def tenant_slugs(*, session: Session) -> list[str]:
    return list(session.exec(select(Tenant.slug).order_by(Tenant.slug)).all())


def authenticate_api_key(*, session: Session, key: str) -> Tenant | None:
    """The tenant owning an unrevoked key, or None. Lookup is by hash, so no timing leak."""
    row = session.exec(
        select(Tenant)
        .join(ApiKey)
        .where(ApiKey.key_hash == hash_token(key), ApiKey.revoked_at.is_(None))  # type: ignore[union-attr]
    ).first()
    return row


def update_tenant(
    *,
    session: Session,
    slug: str,
    bot_mode: BotMode | None = None,
    allowed_origins: list[str] | None = None,
) -> Tenant:
    """Change how the bot answers (auto, assist, off) or where the widget may run."""
    tenant = get_tenant_by_slug(session=session, slug=slug)
    if tenant is None:
        raise NotFoundError(f"tenant {slug!r} not found")
    if bot_mode is not None:
        tenant.bot_mode = bot_mode
    if allowed_origins is not None:
        tenant.allowed_origins = list(allowed_origins)
    session.add(tenant)
    session.flush()
    return tenant
