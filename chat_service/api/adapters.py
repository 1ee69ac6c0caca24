"""Admin endpoints of the hot-swap protocol: list, publish, activate, roll back."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, status
from starlette.concurrency import run_in_threadpool

from chat_service.deps import AdminDep, ServicesDep
from chat_service.hot_swap import UnknownTenantOrAdapterError
from chat_service.schemas import AdapterList, AdapterPublic, AdapterPublish
from chat_service.services import Services
from core.crud.adapters import list_adapter_versions
from core.crud.tenants import get_tenant_by_slug
from core.db import read_scope
from core.models import AdapterVersion

router = APIRouter(prefix="/v1/admin/tenants/{slug}/adapters", tags=["adapters"])


@router.get("", response_model=AdapterList)
async def get_adapters(slug: str, services: ServicesDep, _admin: AdminDep) -> AdapterList:
    """Every version of the tenant's adapter, newest first, and what is loaded."""

    def read() -> tuple[str | None, str | None, list[AdapterVersion]]:
        with read_scope(services.db) as session:
            tenant = get_tenant_by_slug(session=session, slug=slug)
            if tenant is None:
                raise UnknownTenantOrAdapterError(f"tenant {slug!r} not found")
            assert tenant.id is not None
            versions = list(list_adapter_versions(session=session, tenant_id=tenant.id))
            by_id = {v.id: v.name for v in versions}
            return (
                by_id.get(tenant.active_adapter_id),
                by_id.get(tenant.previous_adapter_id),
                versions,
            )

    active, previous, versions = await run_in_threadpool(read)
    loaded = set(await services.engine.list_adapters())
    return AdapterList(
        active=active,
        previous=previous,
        loaded=sorted(loaded & {v.name for v in versions}),
        items=[AdapterPublic.model_validate(v) for v in versions],
    )


async def _run(services: Services, action: str, **kwargs: object) -> AdapterPublic:
    """One of the hot-swap protocol's operations; its errors answer for themselves
    (chat_service/errors.py)."""
    version = await getattr(services.adapters, action)(**kwargs)
    return AdapterPublic.model_validate(version)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AdapterPublic)
async def publish_adapter(
    slug: str, body: AdapterPublish, services: ServicesDep, _admin: AdminDep
) -> AdapterPublic:
    """Register a new version and hot-swap it in (load, smoke test, switch)."""
    return await _run(services, "publish", tenant_slug=slug, name=body.name, path=Path(body.path))


@router.post("/{name}/activate", response_model=AdapterPublic)
async def activate_adapter(
    slug: str, name: str, services: ServicesDep, _admin: AdminDep
) -> AdapterPublic:
    return await _run(services, "activate", tenant_slug=slug, name=name)


@router.post("/rollback", response_model=AdapterPublic)
async def rollback_adapter(slug: str, services: ServicesDep, _admin: AdminDep) -> AdapterPublic:
    """Back to the previous version, which is still loaded."""
    return await _run(services, "rollback", tenant_slug=slug)
