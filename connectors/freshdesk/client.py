"""Freshdesk REST API v2: a ticket and its conversations (basic auth: API key, "X")."""

from __future__ import annotations

import base64
from typing import Any

from connectors.http_retry import get_json


def _headers(token: str) -> dict[str, str]:
    basic = base64.b64encode(f"{token}:X".encode()).decode()
    return {"Authorization": f"Basic {basic}", "Accept": "application/json"}


def fetch_ticket(
    *, api_base: str, token: str, ticket_id: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    base = api_base.rstrip("/")
    ticket = get_json(f"{base}/api/v2/tickets/{ticket_id}", headers=_headers(token))
    conversations: list[dict[str, Any]] = []
    page = 1
    while True:
        batch: Any = get_json(
            f"{base}/api/v2/tickets/{ticket_id}/conversations",
            params={"per_page": 100, "page": page},
            headers=_headers(token),
        )
        items = batch if isinstance(batch, list) else batch.get("conversations", [])
        conversations.extend(items)
        if len(items) < 100:
            return ticket, conversations
        page += 1
