"""HubSpot Conversations API: single messages (webhooks), threads and their messages (backfill)."""

from __future__ import annotations

from typing import Any

from connectors.http_retry import get_json

THREADS = "conversations/v3/conversations/threads"


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


def fetch_message(*, api_base: str, token: str, thread_id: str, message_id: str) -> dict[str, Any]:
    return get_json(
        f"{api_base.rstrip('/')}/{THREADS}/{thread_id}/messages/{message_id}",
        headers=_headers(token),
    )


def list_threads(
    *, api_base: str, token: str, latest_after: str, after: str | None
) -> dict[str, Any]:
    """One page of threads by latest message time, oldest first (crm-formats §4.5)."""
    params: dict[str, Any] = {
        "sort": "latestMessageTimestamp",
        "latestMessageTimestampAfter": latest_after,
        "limit": 100,
    }
    if after:
        params["after"] = after
    return get_json(f"{api_base.rstrip('/')}/{THREADS}", params=params, headers=_headers(token))


def thread_messages(*, api_base: str, token: str, thread_id: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 100}
    while True:
        batch = get_json(
            f"{api_base.rstrip('/')}/{THREADS}/{thread_id}/messages",
            params=params,
            headers=_headers(token),
        )
        messages.extend(batch.get("results", []))
        following = ((batch.get("paging") or {}).get("next") or {}).get("after")
        if not following or following == params.get("after"):
            return messages
        params = {"limit": 100, "after": following}
