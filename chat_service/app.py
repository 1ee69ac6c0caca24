"""Builds the FastAPI application; everything long-lived is created in the lifespan."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from chat_service import errors
from chat_service.adapter_leases import AdapterLeases
from chat_service.api import adapters as adapters_api
from chat_service.api import (
    chat_ws,
    console,
    conversations,
    health,
    tenants,
    widget,
)
from chat_service.api import knowledge as knowledge_api
from chat_service.body_limit import BodyLimit
from chat_service.coordination import start_coordination
from chat_service.handoff import Handoff
from chat_service.hot_swap import AdapterManager
from chat_service.responder import Responder
from chat_service.secret_key import load_secret_key
from chat_service.services import Services
from chat_service.telemetry import count_requests
from core.crud.tenants import create_tenant, get_tenant_by_slug
from core.db import create_db_engine, session_scope
from core.group_commit import GroupCommit
from core.migrate import upgrade_database
from core.settings import Settings, get_settings
from engines import Engine, build_engine
from knowledge import KnowledgeBase, read_tree, sync_documents

log = logging.getLogger(__name__)


DEMO_HELP_CENTER = Path(__file__).parent / "demo_help_center"


def _ensure_demo_tenant(services: Services) -> None:
    """The demo tenant, answering from the small help center that ships with the project
    (synced at every start: unchanged articles cost nothing)."""
    slug = services.settings.demo_tenant
    if not slug:
        return
    with session_scope(services.db) as session:
        tenant = get_tenant_by_slug(session=session, slug=slug)
        if tenant is None:
            tenant, _ = create_tenant(session=session, slug=slug, name="Demo")
            log.info("created demo tenant %r for the page at /", slug)
        tenant_id = tenant.id
    assert tenant_id is not None
    if services.settings.knowledge.enabled:
        sync_documents(
            services.db,
            tenant_id=tenant_id,
            source="demo",
            documents=read_tree(DEMO_HELP_CENTER),
            embeddings=services.knowledge.embeddings,
        )


Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    lifespans: Sequence[Lifespan] = (),
    body_limits: Mapping[str, int] | None = None,
) -> FastAPI:
    """``engine``: an already started engine to share (tests); otherwise the app builds, starts
    and closes its own. ``lifespans``: what other packages run alongside (the composition root
    passes them); they start once the chat service is ready and stop before it does.
    ``body_limits``: path prefix -> largest body, for routes other packages mount (webhooks)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = create_db_engine(settings.resolved_database_url)
        await run_in_threadpool(upgrade_database, db)
        serving = engine or build_engine(settings)
        if engine is None:
            await serving.start()
        shared = await start_coordination(settings)
        hub = shared.hub
        leases = AdapterLeases()
        adapters = AdapterManager(
            db=db,
            engine=serving,
            leases=leases,
            settings=settings,
            leadership=shared.leadership,
        )
        handoff = Handoff(db=db, hub=hub, settings=settings)
        knowledge = KnowledgeBase(db, settings.knowledge)
        services = Services(
            settings=settings,
            db=db,
            engine=serving,
            hub=hub,
            responder=Responder(
                db=db,
                engine=serving,
                hub=hub,
                settings=settings,
                adapters=adapters,
                leases=leases,
                handoff=handoff,
                knowledge=knowledge,
                reply_leases=shared.reply_leases,
                budget=shared.token_budget,
            ),
            adapters=adapters,
            leases=leases,
            handoff=handoff,
            secret_key=load_secret_key(settings),
            rate_limiter=shared.rate_limiter,
            connection_caps=shared.connection_caps,
            knowledge=knowledge,
            writes=GroupCommit(db, max_batch=settings.group_commit_max_batch),
        )
        await run_in_threadpool(_ensure_demo_tenant, services)
        # Load every tenant's active adapter before taking traffic, then keep checking.
        await adapters.try_sync()
        # Replies that a shutdown or a crash cancelled are owed still.
        owed = await services.responder.answer_the_unanswered(quiet_for_s=0)
        if owed:
            log.info("answering %d conversations left without a reply", owed)
        background = [
            asyncio.create_task(adapters.run_sync_loop(), name="adapter-sync"),
            asyncio.create_task(handoff.run_expiry_loop(), name="handoff-expiry"),
            asyncio.create_task(services.responder.run_unanswered_loop(), name="unanswered"),
        ]
        app.state.services = services
        log.info("SupportLoop ready (engine=%s)", serving.name)
        try:
            async with AsyncExitStack() as others:
                for other in lifespans:
                    await others.enter_async_context(other(app))
                yield
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await services.responder.close()
            await shared.close()
            await run_in_threadpool(services.writes.close)
            if engine is None:
                await serving.close()
            db.dispose()

    app = FastAPI(
        title="SupportLoop",
        version="0.1.0",
        summary="Self-hosted support chatbot that learns from its own conversations.",
        lifespan=lifespan,
    )
    errors.install(app)
    app.middleware("http")(count_requests)
    app.add_middleware(
        BodyLimit,
        default=settings.max_body_bytes,
        by_prefix={"/v1/knowledge/documents": settings.max_upload_bytes, **(body_limits or {})},
    )
    routers = (
        health,
        tenants,
        conversations,
        knowledge_api,
        adapters_api,
        chat_ws,
        widget,
        console,
    )
    for module in routers:
        app.include_router(module.router)
    return app
