"""Salesforce's part in the webhook receiver: SOAP Outbound Messages, answered with an Ack.

Outbound Messages are unsigned, and the organisation id they carry is public (it appears in
every Web-to-Case form), so it cannot authenticate anything. The endpoint URL configured in
Salesforce carries a per-tenant secret instead (``?token=...``, kept out of the logs), checked
like a shared token; the organisation id, when configured, is then a consistency check: an
Outbound Message from another org is kept as a dead event with the reason, never ingested.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from connectors.errors import RecordError
from connectors.records import InboundConversation
from connectors.salesforce import mapper, soap
from connectors.salesforce.client import fetch_case
from connectors.signatures import verify_shared_token
from connectors.webhook_spec import Delivery, credentials, own_authors
from core.settings import Settings


class SalesforceWebhook:
    name = "salesforce"
    ack: str | None = soap.ACK

    def verify(
        self, delivery: Delivery, secrets: Sequence[str], tolerance_s: int, now: float | None
    ) -> None:
        token = parse_qs(urlsplit(delivery.url).query).get("token", [None])[0]
        verify_shared_token(token, secrets, header="token (in the endpoint URL)")

    def events(self, raw: bytes) -> list[tuple[dict[str, Any], bytes]]:
        message = soap.parse(raw)
        events = [
            {
                "notification_id": n.notification_id,
                "object_type": n.object_type,
                "record_id": n.record_id,
                "organization_id": message.organization_id,
            }
            for n in message.notifications
        ]
        return [(event, json.dumps(event).encode()) for event in events]

    def event_id(self, payload: dict[str, Any], delivery: Delivery, body: bytes) -> str:
        return str(payload["notification_id"])

    def conversation_ref(self, payload: dict[str, Any]) -> str | None:
        return str(payload["record_id"]) if payload.get("object_type") == "Case" else None

    def record(
        self, payload: dict[str, Any], tenant_slug: str, settings: Settings
    ) -> InboundConversation | None:
        if payload.get("object_type") != "Case":
            return None
        api = credentials(settings, tenant_slug, self.name)
        expected = api.get("organization_id")
        if expected and payload.get("organization_id") != expected:
            raise RecordError(
                f"Outbound Message from organisation {payload.get('organization_id')!r}, "
                f"this tenant is connected to {expected!r}"
            )
        try:
            data = fetch_case(
                api_base=api["api_base"], token=api["token"], case_id=str(payload["record_id"])
            )
        except ValueError as exc:
            raise RecordError(str(exc)) from None
        return mapper.case(data, own_authors(settings, tenant_slug, self.name))
