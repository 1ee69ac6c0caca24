"""Salesforce's part in the webhook receiver: SOAP Outbound Messages, answered with an Ack."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from connectors.errors import RecordError, SignatureError
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
        # Outbound Messages are unsigned: the organisation id must be one we were configured with.
        try:
            org = soap.parse(delivery.raw).organization_id
        except RecordError as exc:
            raise SignatureError(f"cannot check the organisation id: {exc}") from None
        verify_shared_token(org, secrets, header="OrganizationId")

    def events(self, raw: bytes) -> list[tuple[dict[str, Any], bytes]]:
        events = [
            {
                "notification_id": n.notification_id,
                "object_type": n.object_type,
                "record_id": n.record_id,
            }
            for n in soap.parse(raw).notifications
        ]
        return [(event, json.dumps(event).encode()) for event in events]

    def event_id(self, payload: dict[str, Any], delivery: Delivery, body: bytes) -> str:
        return str(payload["notification_id"])

    def record(
        self, payload: dict[str, Any], tenant_slug: str, settings: Settings
    ) -> InboundConversation | None:
        if payload.get("object_type") != "Case":
            return None
        api = credentials(settings, tenant_slug, self.name)
        try:
            data = fetch_case(
                api_base=api["api_base"], token=api["token"], case_id=str(payload["record_id"])
            )
        except ValueError as exc:
            raise RecordError(str(exc)) from None
        return mapper.case(data, own_authors(settings, tenant_slug, self.name))
