"""Bring the engine in line with the adapter registry: every tenant's active adapter loaded."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from chat_service.engine import EngineError
from chat_service.services import Services
from core.db import session_scope
from core.models import AdapterVersion, Tenant

log = logging.getLogger(__name__)


def _active_adapters(services: Services) -> list[tuple[str, Path]]:
    with session_scope(services.db) as session:
        rows = session.exec(
            select(AdapterVersion).join(
                Tenant, col(Tenant.active_adapter_id) == col(AdapterVersion.id)
            )
        ).all()
        return [(row.name, Path(row.path)) for row in rows]


async def load_active_adapters(services: Services) -> None:
    """Load what is missing. A failure is logged and that tenant is answered by the base model:
    one bad adapter must not keep the whole service from starting."""
    loaded = set(await services.engine.list_adapters())
    for name, path in await run_in_threadpool(_active_adapters, services):
        if name in loaded:
            continue
        try:
            await services.engine.load_adapter(name, path)
        except EngineError:
            log.exception("could not load active adapter %s from %s", name, path)
