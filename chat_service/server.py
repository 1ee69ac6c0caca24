"""Run the chat service under uvicorn with the protocol limits from the settings."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI

from chat_service import log_redaction
from chat_service.app import create_app
from core.settings import Settings

GRACEFUL_SHUTDOWN_S = 10  # uvicorn waits forever by default (security goal 8)
STARTUP_TIMEOUT_S = 120
T = TypeVar("T")


def uvicorn_config(settings: Settings, app: FastAPI | None = None) -> uvicorn.Config:
    config = uvicorn.Config(
        app or create_app(settings),
        host=settings.host,
        port=settings.port,
        ws_max_size=settings.ws_max_message_bytes,
        ws_ping_interval=settings.ws_ping_interval_s,
        ws_ping_timeout=settings.ws_ping_timeout_s,
        ws_per_message_deflate=settings.ws_per_message_deflate,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        # Forwarded headers are anyone's to write: believed only from the configured proxies.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or "",
        log_level="info",
    )
    log_redaction.install()  # after uvicorn configured its loggers
    return config


def serve(settings: Settings, app: FastAPI | None = None) -> None:
    uvicorn.Server(uvicorn_config(settings, app)).run()


class BackgroundServer:
    """uvicorn on its own thread and event loop: for tests and benchmarks that drive the real
    server over real sockets from the same process."""

    def __init__(self, settings: Settings, app: FastAPI) -> None:
        self.app = app
        self.settings = settings
        self.http_url = f"http://{settings.host}:{settings.port}"
        self.ws_url = f"ws://{settings.host}:{settings.port}"
        config = uvicorn_config(settings, app)
        config.log_level = "warning"
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="uvicorn", daemon=True)
        self.loop: asyncio.AbstractEventLoop | None = None

    def _serve(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self._server.serve())
        self.loop.close()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the server's loop (state such as the responder lives there)."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=300)

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server failed to start; see its log")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=GRACEFUL_SHUTDOWN_S + self.settings.shutdown_drain_s + 5)
