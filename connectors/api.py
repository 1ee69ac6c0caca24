"""HTTP edge of the connectors: the webhook receiver, mounted by the composition root."""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.engine import Engine as DbEngine
from starlette.concurrency import run_in_threadpool

from connectors.telemetry import WEBHOOK_DELIVERIES, WEBHOOK_SECONDS
from connectors.webhook_spec import Delivery
from connectors.webhooks import PROVIDERS, receive
from core.group_commit import GroupCommit
from core.settings import Settings

WEBHOOK_PREFIX = "/v1/webhooks/"


def webhook_router(
    get_db: Callable[[], DbEngine], settings: Settings, get_writes: Callable[[], GroupCommit]
) -> APIRouter:
    """``get_writes``: the service's group commit, shared with chat acks."""
    router = APIRouter(tags=["webhooks"])

    @router.post(WEBHOOK_PREFIX + "{provider}/{tenant}")
    async def post_webhook(provider: str, tenant: str, request: Request) -> Response:
        """A CRM delivery: verified on the raw body, stored once, answered after the commit."""
        delivery = Delivery(
            provider=provider,
            tenant_slug=tenant,
            raw=await request.body(),
            headers={k.lower(): v for k, v in request.headers.items()},
            method=request.method,
            url=str(request.url),
        )
        started = time.perf_counter()
        outcome = await run_in_threadpool(
            lambda: receive(db=get_db(), settings=settings, delivery=delivery, writes=get_writes())
        )
        label = provider if provider in PROVIDERS else "unknown"  # bounded label values
        WEBHOOK_DELIVERIES.labels(label, str(outcome.status_code)).inc()
        WEBHOOK_SECONDS.labels(label).observe(time.perf_counter() - started)
        if outcome.xml is not None:
            return Response(outcome.xml, status_code=outcome.status_code, media_type="text/xml")
        return JSONResponse(outcome.body, status_code=outcome.status_code)

    return router
