"""Zendesk backfill: the cursor-based incremental ticket export, each ticket's comments."""

from __future__ import annotations

from connectors.backfill_spec import Page
from connectors.zendesk.client import ZendeskClient
from connectors.zendesk.mapper import map_ticket


def page(api: dict[str, str], cursor: str | None, start_time: int, own: frozenset[str]) -> Page:
    """Zendesk's export cursor stays valid after the end of the stream, so it is stored as is."""
    client = ZendeskClient(api_base=api["api_base"], token=api["token"])
    listing = client.ticket_page(cursor=cursor, start_time=start_time)
    records = []
    for ticket in listing.get("tickets", []):
        if ticket.get("status") == "deleted":  # its comments are gone with it
            records.append(map_ticket(ticket, [], {}, own))
            continue
        comments, users = client.comments(str(ticket["id"]))
        records.append(map_ticket(ticket, comments, users, own))
    after = str(listing["after_cursor"]) if listing.get("after_cursor") else None
    return Page(records, after, bool(listing.get("end_of_stream")) or after is None)
