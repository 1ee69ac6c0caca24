"""Freshdesk's part in the webhook receiver: unsigned, so a shared secret header we configure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.freshdesk import mapper
from connectors.freshdesk.client import fetch_ticket
from connectors.records import InboundConversation
from connectors.signatures import verify_shared_token
from connectors.webhook_spec import Delivery, credentials, own_authors, single_event
from core.settings import Settings

TOKEN_HEADER = "x-supportloop-token"


class FreshdeskWebhook:
    name = "freshdesk"
    ack: str | None = None

    def verify(
        self, delivery: Delivery, secrets: Sequence[str], tolerance_s: int, now: float | None
    ) -> None:
        verify_shared_token(
            delivery.headers.get(TOKEN_HEADER), secrets, header="X-SupportLoop-Token"
        )

    def events(self, raw: bytes) -> list[tuple[dict[str, Any], bytes]]:
        return single_event(raw)

    def event_id(self, payload: dict[str, Any], delivery: Delivery, body: bytes) -> str:
        return mapper.ticket_ref(payload, body)[0]

    def conversation_ref(self, payload: dict[str, Any]) -> str | None:
        return mapper.ticket_ref(payload, b"")[1]

    def record(
        self, payload: dict[str, Any], tenant_slug: str, settings: Settings
    ) -> InboundConversation | None:
        _, ticket_id = mapper.ticket_ref(payload, b"")
        api = credentials(settings, tenant_slug, self.name)
        data, conversations = fetch_ticket(
            api_base=api["api_base"], token=api["token"], ticket_id=ticket_id
        )
        return mapper.ticket(data, conversations, own_authors(settings, tenant_slug, self.name))
