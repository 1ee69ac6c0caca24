"""Intercom REST API: the full conversation behind a notification."""

from __future__ import annotations

from typing import Any

from connectors.http_retry import get_json, post_json

API_VERSION = "2.11"  # pinned: the conversation shape changed between 1.x and 2.x


def fetch_conversation(*, api_base: str, token: str, conversation_id: str) -> dict[str, Any]:
    return get_json(
        f"{api_base.rstrip('/')}/conversations/{conversation_id}",
        params={"display_as": "plaintext"},
        headers={
            "Authorization": f"Bearer {token}",
            "Intercom-Version": API_VERSION,
            "Accept": "application/json",
        },
    )


def fetch_ticket(*, api_base: str, token: str, ticket_id: str) -> dict[str, Any]:
    return get_json(
        f"{api_base.rstrip('/')}/tickets/{ticket_id}",
        headers={
            "Authorization": f"Bearer {token}",
            "Intercom-Version": API_VERSION,
            "Accept": "application/json",
        },
    )


def search_conversations(
    *, api_base: str, token: str, updated_after: int, starting_after: str | None
) -> dict[str, Any]:
    """One page of conversations updated after a time (crm-formats §5.5)."""
    pagination: dict[str, Any] = {"per_page": 150}
    if starting_after:
        pagination["starting_after"] = starting_after
    return post_json(
        f"{api_base.rstrip('/')}/conversations/search",
        body={
            "query": {"field": "updated_at", "operator": ">", "value": updated_after},
            "pagination": pagination,
        },
        headers={
            "Authorization": f"Bearer {token}",
            "Intercom-Version": API_VERSION,
            "Accept": "application/json",
        },
    )
