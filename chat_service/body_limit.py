"""A ceiling on every request body, enforced before anything is buffered.

Starlette and FastAPI read a body whole when a route asks for it (``request.body()``, form
parsing), so without a limit one request can fill the memory, and a route that checks the API
key after parsing reads a multi-gigabyte upload before it answers 404. This ASGI middleware
answers 413 from the ``Content-Length`` header alone when it is too big, and counts the bytes
of a body sent without one (chunked), answering 413 as soon as the count passes the limit; the
route never sees the rest. Limits are chosen by path prefix (webhooks and document uploads may
be allowed more), the longest matching prefix winning.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# A refused body up to this size is read and thrown away before the 413, so that the client,
# still sending, sees the answer instead of a reset connection; beyond it the connection is
# closed at once.
DRAIN_BYTES = 8 * 1024 * 1024


class BodyTooLargeError(Exception):
    """Raised into the route's read; the middleware answers 413 for it."""


class BodyLimit:
    def __init__(self, app: ASGIApp, *, default: int, by_prefix: Mapping[str, int]) -> None:
        self.app = app
        self.default = default
        # Longest prefix first, so "/v1/knowledge/documents" beats "/v1/".
        self.by_prefix = sorted(by_prefix.items(), key=lambda item: -len(item[0]))

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.by_prefix:
            if path.startswith(prefix):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            if declared <= DRAIN_BYTES:
                await _drain(receive, DRAIN_BYTES)
            await _too_large(send, limit)
            return

        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLargeError(f"request body over {limit} bytes")
            return message

        async def guarded_send(message: Message) -> None:
            # A route that turned the interrupted read into its own error (FastAPI answers a
            # failed form parse with 400) is overruled: the client gets the real reason.
            nonlocal started
            if exceeded:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded:  # whatever the cut-off read turned into, the reason is the size
                raise
        if exceeded and not started:
            await _drain(receive, DRAIN_BYTES - received)
            await _too_large(send, limit)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _drain(receive: Receive, most: int) -> None:
    """Reads and discards the rest of the body, up to ``most`` bytes."""
    while most > 0:
        message = await receive()
        if message["type"] != "http.request":
            return
        most -= len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps({"detail": f"request body too large: the limit here is {limit} bytes"})
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body.encode()})
