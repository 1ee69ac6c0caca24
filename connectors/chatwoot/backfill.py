"""Chatwoot backfill: every conversation page; messages only of conversations active since.

Chatwoot's webhooks are sent once and never retried (crm-formats §7.3), so this poll is what
makes its ingestion lossless. The list has no "changed since" filter, so each run lists every
conversation (cheap) and fetches messages only where `last_activity_at` moved past the mark.
"""

from __future__ import annotations

from connectors.backfill_spec import Page, Position, epoch
from connectors.chatwoot import mapper
from connectors.chatwoot.client import conversation_messages, list_conversations


def page(api: dict[str, str], cursor: str | None, start_time: int, own: frozenset[str]) -> Page:
    at = Position.decode(cursor, start_time)
    number = int(at.page or 1)
    account = api["account_id"]
    found = list_conversations(
        api_base=api["api_base"], token=api["token"], account_id=account, page=number
    )
    if not found:
        return Page([], at.finished(at.mark).encode(), True)
    changed = [c for c in found if epoch(c.get("last_activity_at") or 0) > at.since]
    records = [
        mapper.conversation(
            account,
            c,
            conversation_messages(
                api_base=api["api_base"],
                token=api["token"],
                account_id=account,
                conversation_id=str(c["id"]),
            ),
            own,
        )
        for c in changed
    ]
    newest = max([epoch(c.get("last_activity_at") or 0) for c in found], default=at.since)
    return Page(records, at.next_page(str(number + 1), newest).encode(), False)
