"""Chatwoot's part in the webhook receiver."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.chatwoot.mapper import map_event
from connectors.records import InboundConversation
from connectors.signatures import verify_chatwoot
from connectors.webhook_spec import Delivery, single_event
from core.settings import Settings


class ChatwootWebhook:
    name = "chatwoot"
    ack: str | None = None

    def verify(
        self, delivery: Delivery, secrets: Sequence[str], tolerance_s: int, now: float | None
    ) -> None:
        verify_chatwoot(
            delivery.raw,
            delivery.headers.get("x-chatwoot-signature"),
            delivery.headers.get("x-chatwoot-timestamp"),
            secrets,
            tolerance_s=tolerance_s,
            now=now,
        )

    def events(self, raw: bytes) -> list[tuple[dict[str, Any], bytes]]:
        return single_event(raw)

    def event_id(self, payload: dict[str, Any], delivery: Delivery, body: bytes) -> str:
        # X-Chatwoot-Delivery is stable across Chatwoot's own retries.
        return map_event(payload, delivery.headers.get("x-chatwoot-delivery"))[0]

    def conversation_ref(self, payload: dict[str, Any]) -> str | None:
        return f"{payload['account']['id']}:{payload['conversation']['id']}"

    def record(
        self, payload: dict[str, Any], tenant_slug: str, settings: Settings
    ) -> InboundConversation | None:
        return map_event(payload, None)[1]
