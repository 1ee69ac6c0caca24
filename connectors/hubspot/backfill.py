"""HubSpot backfill: threads by latest message time, then every message of each thread."""

from __future__ import annotations

from connectors.backfill_spec import Page, Position, epoch
from connectors.hubspot import mapper
from connectors.hubspot.client import list_threads, thread_messages


def page(api: dict[str, str], cursor: str | None, start_time: int, own: frozenset[str]) -> Page:
    at = Position.decode(cursor, start_time)
    listing = list_threads(
        api_base=api["api_base"], token=api["token"], latest_after=at.since_iso(), after=at.page
    )
    threads = listing.get("results", [])
    records = [
        mapper.thread(
            str(t["id"]),
            thread_messages(api_base=api["api_base"], token=api["token"], thread_id=str(t["id"])),
            own,
        )
        for t in threads
    ]
    newest = max(
        [epoch(t["latestMessageTimestamp"]) for t in threads if t.get("latestMessageTimestamp")],
        default=at.since,
    )
    following = ((listing.get("paging") or {}).get("next") or {}).get("after")
    if following:
        return Page(records, at.next_page(str(following), newest).encode(), False)
    return Page(records, at.finished(newest).encode(), True)
