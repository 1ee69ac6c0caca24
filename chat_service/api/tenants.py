"""Tenant administration (admin token)."""

from __future__ import annotations

from fastapi import APIRouter, status

from chat_service.deps import AdminDep, SessionDep
from chat_service.schemas import TenantCreate, TenantCreated, TenantPublic, TenantUpdate
from core.crud.tenants import create_tenant, update_tenant

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
    slug: str, body: TenantUpdate, session: SessionDep, _admin: AdminDep
) -> TenantPublic:
    """Switch the bot mode (auto, assist, off) or replace the widget's allowed origins."""
    tenant = update_tenant(
        session=session,
        slug=slug,
        bot_mode=body.bot_mode,
        allowed_origins=body.allowed_origins,
    )
    session.commit()
    return TenantPublic.model_validate(tenant)
