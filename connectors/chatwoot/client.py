"""Chatwoot application API: conversations of an account and their messages (crm-formats §7.4)."""

from __future__ import annotations

from typing import Any

from connectors.http_retry import get_json


def _base(api_base: str, account_id: str) -> str:
    return f"{api_base.rstrip('/')}/api/v1/accounts/{account_id}/conversations"


def list_conversations(
    *, api_base: str, token: str, account_id: str, page: int
) -> list[dict[str, Any]]:
    body = get_json(
        _base(api_base, account_id),
        params={"status": "all", "page": page},
        headers={"api_access_token": token, "Accept": "application/json"},
    )
    return list((body.get("data") or {}).get("payload", []))


def conversation_messages(
    *, api_base: str, token: str, account_id: str, conversation_id: str
) -> list[dict[str, Any]]:
    """Every message, oldest first: the API hands out the newest 20 and older ones `before` an id."""
    messages: list[dict[str, Any]] = []
    params: dict[str, Any] = {}
    while True:
        batch = get_json(
            f"{_base(api_base, account_id)}/{conversation_id}/messages",
            params=params,
            headers={"api_access_token": token, "Accept": "application/json"},
        )
        items = list(batch.get("payload", []))
        if not items:
            return sorted(messages, key=lambda m: int(m["id"]))
        messages.extend(items)
        params = {"before": min(int(m["id"]) for m in items)}
