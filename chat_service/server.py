"""Run the chat service under uvicorn with the protocol limits from the settings."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from chat_service.app import create_app
from core.settings import Settings

GRACEFUL_SHUTDOWN_S = 10  # uvicorn waits forever by default (security goal 8)


def uvicorn_config(settings: Settings, app: FastAPI | None = None) -> uvicorn.Config:
    return uvicorn.Config(
        app or create_app(settings),
        host=settings.host,
        port=settings.port,
        ws_max_size=settings.ws_max_message_bytes,
        ws_ping_interval=settings.ws_ping_interval_s,
        ws_ping_timeout=settings.ws_ping_timeout_s,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        log_level="info",
    )


def serve(settings: Settings) -> None:
    uvicorn.Server(uvicorn_config(settings)).run()
