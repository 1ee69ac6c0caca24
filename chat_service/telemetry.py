"""Prometheus metrics of the chat service (served at /metrics by the composition root).

Tokens per second is rate(supportloop_reply_tokens) / rate(supportloop_reply_stream_seconds);
request rates come from supportloop_http_requests and supportloop_chat_messages.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "supportloop_http_requests",
    "HTTP requests by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "supportloop_http_request_seconds", "HTTP request latency by route template.", ["route"]
)
CHAT_MESSAGES = Counter(
    "supportloop_chat_messages", "Messages stored in live conversations, by role.", ["role"]
)
CONNECTIONS = Gauge("supportloop_active_connections", "Open WebSocket connections.", ["kind"])
TTFT = Histogram(
    "supportloop_reply_ttft_seconds",
    "Time from a customer message being scheduled to the first streamed token of the reply.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32),
)
REPLY_TOKENS = Counter("supportloop_reply_tokens", "Streamed reply pieces (tokens).")
REPLY_STREAM_SECONDS = Counter(
    "supportloop_reply_stream_seconds", "Time spent streaming replies, first to last token."
)
GROUNDED = Counter(
    "supportloop_grounded_replies",
    "Grounded compositions by outcome: answered, quoted (the model's reply failed the check) "
    "or refused (the documents were silent).",
    ["outcome"],
)
REPLIES = Counter(
    "supportloop_replies",
    "Bot compositions by kind (reply/suggestion) and outcome.",
    ["kind", "outcome"],
)


async def count_requests(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """HTTP middleware: counts by route template (never the raw path, which would let any
    client create new time series)."""
    started = time.perf_counter()
    response = await call_next(request)
    route = request.scope.get("route")
    template = getattr(route, "path", "unmatched")
    HTTP_REQUESTS.labels(request.method, template, str(response.status_code)).inc()
    HTTP_SECONDS.labels(template).observe(time.perf_counter() - started)
    return response
