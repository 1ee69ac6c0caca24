"""Freshdesk REST API v2: tickets and their conversations (basic auth: API key, "X")."""

from __future__ import annotations

import base64
from typing import Any

from connectors.http_retry import get_json

PER_PAGE = 100


def headers(token: str) -> dict[str, str]:
    basic = base64.b64encode(f"{token}:X".encode()).decode()
    return {"Authorization": f"Basic {basic}", "Accept": "application/json"}


def _items(batch: Any, key: str) -> list[dict[str, Any]]:
    return list(batch if isinstance(batch, list) else batch.get(key, []))


def ticket_conversations(*, api_base: str, token: str, ticket_id: str) -> list[dict[str, Any]]:
    conversations: list[dict[str, Any]] = []
    page = 1
    while True:
        items = _items(
            get_json(
                f"{api_base.rstrip('/')}/api/v2/tickets/{ticket_id}/conversations",
                params={"per_page": PER_PAGE, "page": page},
                headers=headers(token),
            ),
            "conversations",
        )
        conversations.extend(items)
        if len(items) < PER_PAGE:
            return conversations
        page += 1


def fetch_ticket(
    *, api_base: str, token: str, ticket_id: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    ticket = get_json(f"{api_base.rstrip('/')}/api/v2/tickets/{ticket_id}", headers=headers(token))
    return ticket, ticket_conversations(api_base=api_base, token=token, ticket_id=ticket_id)


def list_tickets(
    *, api_base: str, token: str, updated_since: str, page: int
) -> list[dict[str, Any]]:
    """One page of tickets changed since a time, oldest change first (crm-formats §6.4)."""
    return _items(
        get_json(
            f"{api_base.rstrip('/')}/api/v2/tickets",
            params={
                "updated_since": updated_since,
                "order_by": "updated_at",
                "order_type": "asc",
                "per_page": PER_PAGE,
                "page": page,
                "include": "description",
            },
            headers=headers(token),
        ),
        "tickets",
    )
