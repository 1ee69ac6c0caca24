"""Tenants and API keys."""

from __future__ import annotations

import re

from sqlmodel import Session, select

from core.errors import ConflictError, InvalidError, NotFoundError
from core.models import ApiKey, BotMode, Tenant
from core.models.types import utcnow
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


def api_keys(*, session: Session, slug: str) -> list[ApiKey]:
    return _keys_of(session, require_tenant(session=session, slug=slug))


def _keys_of(session: Session, tenant: Tenant) -> list[ApiKey]:
    query = select(ApiKey).where(ApiKey.tenant_id == tenant.id).order_by(ApiKey.id)  # type: ignore[arg-type]
    return list(session.exec(query))


def rotate_api_key(*, session: Session, slug: str) -> tuple[str, list[ApiKey]]:
    """A new key, and every key the tenant held until now revoked in the same transaction:
    the old key is refused from the commit on (no grace period: rotation after a leak must
    shut the leaked key out)."""
    tenant = require_tenant(session=session, slug=slug)
    revoked = [key for key in _keys_of(session, tenant) if key.revoked_at is None]
    for key in revoked:
        key.revoked_at = utcnow()
    return issue_api_key(session=session, tenant=tenant), revoked


def revoke_api_key(*, session: Session, slug: str, prefix: str) -> ApiKey:
    """Revokes the tenant's key starting with ``prefix`` (the part a UI shows)."""
    matching = [k for k in api_keys(session=session, slug=slug) if k.prefix.startswith(prefix)]
    if len(matching) != 1 or not prefix:
        raise NotFoundError(f"no single API key of {slug!r} starts with {prefix!r}")
    key = matching[0]
    if key.revoked_at is None:
        key.revoked_at = utcnow()
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
