"""Errors to what the caller sees, decided once: HTTP statuses for the REST API and the
console's JSON API, close codes for the WebSockets.

Routes and sockets raise domain errors (core/errors.py) and the engine's and the hot-swap
protocol's own roots; nothing else turns an error into a status. HTTPException is left for
what is not a domain error: authentication at the edge (chat_service/deps.py,
console_auth.py) and a route that does not exist.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.websockets import WebSocket

from chat_service.hot_swap import HotSwapError
from core.errors import ConflictError, DomainError, ForbiddenError, InvalidError, NotFoundError
from engines import EngineError

log = logging.getLogger(__name__)

CLOSE_POLICY_VIOLATION = 1008  # unknown tenant, disallowed origin, bad token, signed out
CLOSE_TOO_BIG = 1009  # a frame over the size limit
CLOSE_TRY_AGAIN_LATER = 1013  # the client fell too far behind: reconnect and resume

# Most specific first: the hot-swap errors are also NotFound/Conflict errors.
HTTP_STATUS: tuple[tuple[type[Exception], int], ...] = (
    (NotFoundError, 404),
    (ForbiddenError, 403),
    (ConflictError, 409),
    (InvalidError, 422),
    (HotSwapError, 503),  # the engine cannot take the version right now
    (EngineError, 503),
)


def http_status(exc: Exception) -> int:
    return next((code for kind, code in HTTP_STATUS if isinstance(exc, kind)), 500)


def close_code(exc: Exception) -> int:
    """Every domain error that ends a socket is the client's doing: a policy violation."""
    return CLOSE_POLICY_VIOLATION if isinstance(exc, DomainError) else 1011


async def close_for(websocket: WebSocket, exc: Exception) -> None:
    # A close reason is limited to 123 bytes by the protocol.
    await websocket.close(close_code(exc), str(exc).encode()[:120].decode(errors="ignore"))


def install(app: FastAPI) -> None:
    """Answer every domain, engine and hot-swap error with its status and its message."""

    async def answer(request: Request, exc: Exception) -> JSONResponse:
        status = http_status(exc)
        log.info("%s %s -> %d: %s", request.method, request.url.path, status, exc)
        return JSONResponse({"detail": str(exc)}, status_code=status)

    for kind in (DomainError, HotSwapError, EngineError):
        app.add_exception_handler(kind, answer)
