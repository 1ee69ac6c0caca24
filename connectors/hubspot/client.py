"""HubSpot Conversations API: the message behind a `conversation.newMessage` event."""

from __future__ import annotations

from typing import Any

from connectors.http_retry import get_json


def fetch_message(*, api_base: str, token: str, thread_id: str, message_id: str) -> dict[str, Any]:
    return get_json(
        f"{api_base.rstrip('/')}/conversations/v3/conversations/threads/{thread_id}/messages/{message_id}",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    )
