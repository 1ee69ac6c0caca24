"""Intercom REST API: the full conversation behind a notification."""

from __future__ import annotations

from typing import Any

from connectors.http_retry import get_json

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
