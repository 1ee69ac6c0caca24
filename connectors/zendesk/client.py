"""Zendesk REST API: incremental ticket export and ticket comments (crm-formats §2.5)."""

from __future__ import annotations

from typing import Any

from connectors.http_retry import get_json


class ZendeskClient:
    def __init__(self, *, api_base: str, token: str) -> None:
        self._base = api_base.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    def ticket_page(self, *, cursor: str | None, start_time: int) -> dict[str, Any]:
        """One page of the cursor-based incremental export."""
        params: dict[str, Any] = {"cursor": cursor} if cursor else {"start_time": start_time}
        return get_json(
            f"{self._base}/api/v2/incremental/tickets/cursor.json",
            params=params,
            headers=self._headers,
        )

    def comments(self, ticket_id: str) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        """Every comment of a ticket (cursor pages) and the users who wrote them, by id."""
        comments: list[dict[str, Any]] = []
        users: dict[str, dict[str, Any]] = {}
        params: dict[str, Any] = {"page[size]": 100, "include": "users"}
        while True:
            page = get_json(
                f"{self._base}/api/v2/tickets/{ticket_id}/comments.json",
                params=params,
                headers=self._headers,
            )
            comments.extend(page.get("comments", []))
            users.update({str(u["id"]): u for u in page.get("users", [])})
            meta = page.get("meta") or {}
            if not meta.get("has_more"):
                return comments, users
            params = {"page[size]": 100, "include": "users", "page[after]": meta["after_cursor"]}
