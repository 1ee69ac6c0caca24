"""Intercom backfill: search conversations by updated_at, then each one in full."""

from __future__ import annotations

from connectors.backfill_spec import Page, Position
from connectors.intercom import mapper
from connectors.intercom.client import fetch_conversation, search_conversations


def page(api: dict[str, str], cursor: str | None, start_time: int, own: frozenset[str]) -> Page:
    at = Position.decode(cursor, start_time)
    listing = search_conversations(
        api_base=api["api_base"],
        token=api["token"],
        updated_after=at.since,
        starting_after=at.page,
    )
    found = listing.get("conversations", [])
    records = [
        mapper.conversation(
            fetch_conversation(
                api_base=api["api_base"], token=api["token"], conversation_id=str(c["id"])
            ),
            own,
        )
        for c in found
    ]
    newest = max([int(c.get("updated_at", 0)) for c in found], default=at.since)
    following = ((listing.get("pages") or {}).get("next") or {}).get("starting_after")
    if following:
        return Page(records, at.next_page(str(following), newest).encode(), False)
    return Page(records, at.finished(newest).encode(), True)
