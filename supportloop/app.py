"""The whole product as one ASGI app: the chat service plus the connectors' webhook receiver
and its retry loop. Composition happens here so the feature packages never import each other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from chat_service.app import create_app
from chat_service.engine import Engine
from connectors.api import webhook_router
from connectors.webhooks import retry_due
from core.settings import Settings

log = logging.getLogger(__name__)


def build_app(settings: Settings, *, engine: Engine | None = None) -> FastAPI:
    app = create_app(settings, engine=engine)
    app.include_router(webhook_router(lambda: app.state.services.db, settings))
    chat_lifespan = app.router.lifespan_context

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
            retries = asyncio.create_task(retry_webhooks_forever(), name="webhook-retries")
            try:
                yield
            finally:
                retries.cancel()
                await asyncio.gather(retries, return_exceptions=True)

    app.router.lifespan_context = lifespan
    return app
