"""HubSpot's part in the webhook receiver: batches of ids, each message fetched."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from connectors.errors import RecordError
from connectors.hubspot import mapper
from connectors.hubspot.client import fetch_message
from connectors.records import InboundConversation
from connectors.signatures import verify_hubspot_v3
from connectors.webhook_spec import Delivery, credentials, own_authors, parse_json
from core.settings import Settings


class HubSpotWebhook:
    name = "hubspot"
    ack: str | None = None

    def verify(
        self, delivery: Delivery, secrets: Sequence[str], tolerance_s: int, now: float | None
    ) -> None:
        verify_hubspot_v3(
            delivery.raw,
            delivery.headers.get("x-hubspot-signature-v3"),
            delivery.headers.get("x-hubspot-request-timestamp"),
            secrets,
            method=delivery.method,
            uri=delivery.url,
            tolerance_s=tolerance_s,
            now=now,
        )

    def events(self, raw: bytes) -> list[tuple[dict[str, Any], bytes]]:
        payload = parse_json(raw)
        if not isinstance(payload, list) or not all(isinstance(e, dict) for e in payload):
            raise RecordError("body is not a JSON array of events")
        return [(event, json.dumps(event).encode()) for event in payload]

    def event_id(self, payload: dict[str, Any], delivery: Delivery, body: bytes) -> str:
        return mapper.event_key(payload)[0]

    def conversation_ref(self, payload: dict[str, Any]) -> str | None:
        return str(payload["objectId"]) if payload.get("objectId") is not None else None

    def record(
        self, payload: dict[str, Any], tenant_slug: str, settings: Settings
    ) -> InboundConversation | None:
        removal = mapper.deletion(payload)
        if removal is not None:
            return removal
        _, thread_id, message_id = mapper.event_key(payload)
        if thread_id is None or message_id is None:
            return None
        api = credentials(settings, tenant_slug, self.name)
        data = fetch_message(
            api_base=api["api_base"], token=api["token"], thread_id=thread_id, message_id=message_id
        )
        record = mapper.thread(thread_id, [data], own_authors(settings, tenant_slug, self.name))
        return record if record.messages else None
