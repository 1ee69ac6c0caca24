"""Intercom's part in the webhook receiver: the notification is a doorbell."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.intercom import mapper
from connectors.intercom.client import fetch_conversation, fetch_ticket
from connectors.records import InboundConversation
from connectors.signatures import check_signed_time, verify_intercom
from connectors.webhook_spec import Delivery, credentials, own_authors, single_event
from core.settings import Settings


class IntercomWebhook:
    name = "intercom"
    ack: str | None = None

    def verify(
        self, delivery: Delivery, secrets: Sequence[str], tolerance_s: int, now: float | None
    ) -> None:
        verify_intercom(delivery.raw, delivery.headers.get("x-hub-signature"), secrets)
        # Intercom retries keep the first `created_at`: a retry later than the window is
        # refused like a replay, and `connectors sync intercom` reconciles what it carried.
        check_signed_time(delivery.raw, "created_at", tolerance_s, now)

    def events(self, raw: bytes) -> list[tuple[dict[str, Any], bytes]]:
        return single_event(raw)

    def event_id(self, payload: dict[str, Any], delivery: Delivery, body: bytes) -> str:
        return mapper.notification(payload)[0]

    def conversation_ref(self, payload: dict[str, Any]) -> str | None:
        _, item_type, item_id = mapper.notification(payload)
        if item_type == "ticket" and item_id is not None:
            return f"{mapper.TICKET_PREFIX}{item_id}"
        return item_id if item_type == "conversation" else None

    def record(
        self, payload: dict[str, Any], tenant_slug: str, settings: Settings
    ) -> InboundConversation | None:
        removal = mapper.deletion(payload)
        if removal is not None:
            return removal
        _, item_type, item_id = mapper.notification(payload)
        topic = str(payload.get("topic", ""))
        if item_id is None or not topic.startswith(("conversation.", "ticket.")):
            return None  # ping, contact and company topics: nothing a person wrote to us
        api = credentials(settings, tenant_slug, self.name)
        own = own_authors(settings, tenant_slug, self.name)
        if item_type == "ticket":
            data = fetch_ticket(api_base=api["api_base"], token=api["token"], ticket_id=item_id)
            return mapper.ticket(data, own)
        if item_type != "conversation":
            return None
        data = fetch_conversation(
            api_base=api["api_base"], token=api["token"], conversation_id=item_id
        )
        return mapper.conversation(data, own)
