"""The whole product as one ASGI app: the chat service, the connectors' webhook receiver and
its retry loop, the outcome dashboard (shown to console agents) with its refresh loop, and
/metrics. Composition happens here so the feature packages never import each other.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Header, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.engine import Engine as DbEngine
from starlette.concurrency import run_in_threadpool

from analytics import refresh_all_tenants
from analytics.dashboard import dashboard_router
from chat_service.app import Lifespan, create_app
from chat_service.console_auth import AgentContext, current_agent
from connectors.api import WEBHOOK_PREFIX, webhook_router
from connectors.webhooks import retry_due
from core.group_commit import GroupCommit
from core.settings import Settings
from engines import Engine
from supportloop.metrics import metrics_text

log = logging.getLogger(__name__)


def agents_tenant(agent: Annotated[AgentContext, Depends(current_agent)]) -> int:
    """The dashboard shows a signed-in console agent their own tenant's outcomes."""
    return agent.tenant_id


def every(seconds: float, name: str, work: Callable[[DbEngine], object]) -> Lifespan:
    """A lifespan that runs ``work`` (blocking, in the thread pool) every ``seconds`` while the
    app serves. A failed pass is logged and the next one runs on time."""

    async def forever(db: DbEngine) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await run_in_threadpool(work, db)
            except Exception:
                log.exception("%s failed; trying again in %s s", name, seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(forever(app.state.services.db), name=name)
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    return lifespan


def build_app(settings: Settings, *, engine: Engine | None = None) -> FastAPI:
    app = create_app(
        settings,
        engine=engine,
        body_limits={WEBHOOK_PREFIX: settings.max_webhook_body_bytes},
        lifespans=[
            every(
                settings.webhook_retry_interval_s,
                "webhook retries",
                lambda db: retry_due(db=db, settings=settings),
            ),
            every(
                settings.analytics_refresh_interval_s,
                "outcome analytics refresh",
                lambda db: refresh_all_tenants(db, settings),
            ),
        ],
    )

    def get_db() -> DbEngine:
        db: DbEngine = app.state.services.db
        return db

    def get_writes() -> GroupCommit:
        writes: GroupCommit = app.state.services.writes
        return writes

    app.include_router(webhook_router(get_db, settings, get_writes))
    app.include_router(dashboard_router(get_db, settings, agents_tenant))

    @app.get("/metrics", include_in_schema=False)
    def metrics(authorization: Annotated[str | None, Header()] = None) -> Response:
        """Prometheus text format: request rates, time to first token, tokens/s, connections,
        webhook ingestion, training runs and their outcomes. Per-tenant series name the
        tenant only for a scraper holding SUPPORTLOOP_METRICS_TOKEN."""
        token = settings.metrics_token
        if token and not hmac.compare_digest(authorization or "", f"Bearer {token}"):
            return Response("metrics need 'Authorization: Bearer <metrics token>'", 401)
        return Response(
            metrics_text(get_db, name_tenants=bool(token)), media_type=CONTENT_TYPE_LATEST
        )

    return app
