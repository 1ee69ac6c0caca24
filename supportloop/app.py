"""The whole product as one ASGI app: the chat service plus the connectors' webhook receiver.

Composition happens here so the feature packages never import each other.
"""

from __future__ import annotations

from fastapi import FastAPI

from chat_service.app import create_app
from chat_service.engine import Engine
from connectors.api import webhook_router
from core.settings import Settings


def build_app(settings: Settings, *, engine: Engine | None = None) -> FastAPI:
    app = create_app(settings, engine=engine)
    app.include_router(webhook_router(lambda: app.state.services.db, settings))
    return app
