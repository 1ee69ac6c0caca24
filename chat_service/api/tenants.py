"""Tenant administration (admin token)."""

from __future__ import annotations

from fastapi import APIRouter, status

from chat_service.deps import AdminDep, ServicesDep, SessionDep
from chat_service.schemas import (
    ApiKeyPublic,
    ApiKeyRotated,
    TenantCreate,
    TenantCreated,
    TenantPublic,
    TenantUpdate,
)
from core.crud.tenants import (
    api_keys,
    create_tenant,
    revoke_api_key,
    rotate_api_key,
    update_tenant,
)

router = APIRouter(prefix="/v1/tenants", tags=["tenants"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=TenantCreated)
def post_tenant(body: TenantCreate, session: SessionDep, _admin: AdminDep) -> TenantCreated:
    """Create a tenant; the response carries its API key, which is never shown again."""
    tenant, api_key = create_tenant(
        session=session,
        slug=body.slug,
        name=body.name,
        allowed_origins=body.allowed_origins,
        bot_mode=body.bot_mode,
    )
    session.commit()
    return TenantCreated(tenant=TenantPublic.model_validate(tenant), api_key=api_key)


@router.patch("/{slug}", response_model=TenantPublic)
def patch_tenant(
    slug: str, body: TenantUpdate, session: SessionDep, services: ServicesDep, _admin: AdminDep
) -> TenantPublic:
    """Switch the bot mode (auto, assist, off) or replace the widget's allowed origins."""
    tenant = update_tenant(
        session=session,
        slug=slug,
        bot_mode=body.bot_mode,
        allowed_origins=body.allowed_origins,
    )
    session.commit()
    assert tenant.id is not None
    services.responder.mode_changed(tenant.id)
    return TenantPublic.model_validate(tenant)


@router.get("/{slug}/keys", response_model=list[ApiKeyPublic])
def get_keys(slug: str, session: SessionDep, _admin: AdminDep) -> list[ApiKeyPublic]:
    """The tenant's API keys, revoked ones included (prefixes only)."""
    return [ApiKeyPublic.model_validate(k) for k in api_keys(session=session, slug=slug)]


@router.post("/{slug}/keys/rotate", status_code=status.HTTP_201_CREATED)
def post_rotate(slug: str, session: SessionDep, _admin: AdminDep) -> ApiKeyRotated:
    """A new key; every key the tenant held is refused from this answer on."""
    key, revoked = rotate_api_key(session=session, slug=slug)
    session.commit()
    return ApiKeyRotated(api_key=key, revoked=[ApiKeyPublic.model_validate(k) for k in revoked])


@router.delete("/{slug}/keys/{prefix}", status_code=status.HTTP_204_NO_CONTENT)
def delete_key(slug: str, prefix: str, session: SessionDep, _admin: AdminDep) -> None:
    """Revoke one key (by the prefix the listing shows), refused at once."""
    revoke_api_key(session=session, slug=slug, prefix=prefix)
    session.commit()
