"""The whole product as one ASGI app: the chat service, the connectors' webhook receiver and
its retry loop, the outcome dashboard (shown to console agents) with its refresh loop, and
/metrics. Composition happens here so the feature packages never import each other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import select
from starlette.concurrency import run_in_threadpool

from analytics import refresh_tenant
from analytics.dashboard import dashboard_router
from chat_service.app import create_app
from chat_service.console_auth import AgentContext, current_agent
from connectors.api import webhook_router
from connectors.webhooks import retry_due
from core.db import session_scope
from core.models import Tenant
from core.settings import Settings
from engines import Engine
from supportloop.metrics import metrics_text

log = logging.getLogger(__name__)


def agents_tenant(agent: Annotated[AgentContext, Depends(current_agent)]) -> int:
    """The dashboard shows a signed-in console agent their own tenant's outcomes."""
    return agent.tenant_id


def refresh_all_tenants(db: DbEngine, settings: Settings) -> None:
    with session_scope(db) as session:
        tenant_ids = [t for t in session.exec(select(Tenant.id)) if t is not None]
    for tenant_id in tenant_ids:
        refresh_tenant(db, tenant_id, settings)


def build_app(settings: Settings, *, engine: Engine | None = None) -> FastAPI:
    app = create_app(settings, engine=engine)

    def get_db() -> DbEngine:
        db: DbEngine = app.state.services.db
        return db

    app.include_router(webhook_router(get_db, settings))
    app.include_router(dashboard_router(get_db, settings, agents_tenant))

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        """Prometheus text format: request rates, time to first token, tokens/s, connections,
        webhook ingestion, training runs and their outcomes."""
        return Response(metrics_text(get_db), media_type=CONTENT_TYPE_LATEST)

    chat_lifespan = app.router.lifespan_context

    async def refresh_outcomes_forever() -> None:
        while True:
            await asyncio.sleep(settings.analytics_refresh_interval_s)
            try:
                await run_in_threadpool(refresh_all_tenants, get_db(), settings)
            except Exception:
                log.exception("outcome analytics refresh failed")

    async def retry_webhooks_forever() -> None:
        while True:
            await asyncio.sleep(settings.webhook_retry_interval_s)
            try:
                await run_in_threadpool(
                    lambda: retry_due(db=app.state.services.db, settings=settings)
                )
            except Exception:  # keep retrying later; one bad pass must not stop the loop
                log.exception("webhook retry pass failed")

    @asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[None]:
        async with chat_lifespan(application):
            loops = [
                asyncio.create_task(retry_webhooks_forever(), name="webhook-retries"),
                asyncio.create_task(refresh_outcomes_forever(), name="outcome-refresh"),
            ]
            try:
                yield
            finally:
                for task in loops:
                    task.cancel()
                await asyncio.gather(*loops, return_exceptions=True)

    app.router.lifespan_context = lifespan
    return app
