"""Intercom's part in the webhook receiver: the notification is a doorbell."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.intercom import mapper
from connectors.intercom.client import fetch_conversation
from connectors.records import InboundConversation
from connectors.signatures import check_signed_time, verify_intercom
from connectors.webhook_spec import Delivery, credentials, single_event
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

    def record(
        self, payload: dict[str, Any], tenant_slug: str, settings: Settings
    ) -> InboundConversation | None:
        _, conversation_id = mapper.notification(payload)
        if conversation_id is None:
            return None
        api = credentials(settings, tenant_slug, self.name)
        data = fetch_conversation(
            api_base=api["api_base"], token=api["token"], conversation_id=conversation_id
        )
        return mapper.conversation(data)
