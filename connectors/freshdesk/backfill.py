"""Freshdesk backfill: tickets by updated_at (page numbers), then each ticket's conversations."""

from __future__ import annotations

from connectors.backfill_spec import Page, Position, epoch
from connectors.freshdesk import client, mapper

# Freshdesk serves at most 300 pages per query; past that the walk re-anchors `updated_since`
# on the newest ticket seen so far (crm-formats §6.4).
MAX_PAGES = 300


def page(api: dict[str, str], cursor: str | None, start_time: int, own: frozenset[str]) -> Page:
    at = Position.decode(cursor, start_time)
    number = int(at.page or 1)
    tickets = client.list_tickets(
        api_base=api["api_base"], token=api["token"], updated_since=at.since_iso(), page=number
    )
    records = [
        mapper.ticket(
            ticket,
            client.ticket_conversations(
                api_base=api["api_base"], token=api["token"], ticket_id=str(ticket["id"])
            ),
            own,
        )
        for ticket in tickets
    ]
    newest = max([epoch(t["updated_at"]) for t in tickets], default=at.since)
    if len(tickets) < client.PER_PAGE:
        return Page(records, at.finished(newest).encode(), True)
    if number >= MAX_PAGES:
        mark = max(at.mark, newest)
        return Page(records, Position(since=mark, mark=mark).encode(), False)
    return Page(records, at.next_page(str(number + 1), newest).encode(), False)
