"""Zendesk's part in the webhook receiver."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.records import InboundConversation
from connectors.signatures import verify_zendesk
from connectors.webhook_spec import Delivery, own_authors, single_event
from connectors.zendesk.mapper import map_event
from core.settings import Settings


class ZendeskWebhook:
    name = "zendesk"
    ack: str | None = None

    def verify(
        self, delivery: Delivery, secrets: Sequence[str], tolerance_s: int, now: float | None
    ) -> None:
        verify_zendesk(
            delivery.raw,
            delivery.headers.get("x-zendesk-webhook-signature"),
            delivery.headers.get("x-zendesk-webhook-signature-timestamp"),
            secrets,
            tolerance_s=tolerance_s,
            now=now,
        )

    def events(self, raw: bytes) -> list[tuple[dict[str, Any], bytes]]:
        return single_event(raw)

    def event_id(self, payload: dict[str, Any], delivery: Delivery, body: bytes) -> str:
        return map_event(payload)[0]

    def conversation_ref(self, payload: dict[str, Any]) -> str | None:
        return str(payload["detail"]["id"])

    def record(
        self, payload: dict[str, Any], tenant_slug: str, settings: Settings
    ) -> InboundConversation | None:
        return map_event(payload, own_authors(settings, tenant_slug, self.name))[1]
