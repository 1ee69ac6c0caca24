"""What each connector gives the webhook receiver (connectors/webhooks.py).

One small object per provider, in the provider's own package (`connectors/<crm>/webhook.py`):
how to verify a delivery, split it into events, name each event, and turn an event into a
record (calling the provider's API when the webhook is only a doorbell). The receiver does the
rest the same way for every provider: tenant, secrets, idempotency, retries, dead letters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from connectors.errors import ProviderAPIError, RecordError
from connectors.records import InboundConversation
from core.settings import Settings


@dataclass(frozen=True)
class Delivery:
    provider: str
    tenant_slug: str
    raw: bytes
    headers: Mapping[str, str]  # lower-case names
    method: str = "POST"
    url: str = ""  # the exact URL the provider called (HubSpot signs it)


class WebhookProvider(Protocol):
    name: str
    ack: str | None  # a fixed answer body the provider expects (Salesforce's SOAP Ack)

    def verify(
        self, delivery: Delivery, secrets: Sequence[str], tolerance_s: int, now: float | None
    ) -> None:
        """Raise SignatureError unless the delivery is authentic and fresh."""

    def events(self, raw: bytes) -> list[tuple[dict[str, Any], bytes]]:
        """The events in one delivery, each with the bytes kept for replay."""

    def event_id(self, payload: dict[str, Any], delivery: Delivery, body: bytes) -> str:
        """The provider's delivery-level id (the idempotency key)."""

    def conversation_ref(self, payload: dict[str, Any]) -> str | None:
        """The provider's id of the conversation the event is about, as ingestion stores it
        (None when it has none), so an erasure can find the raw body even of an event that
        was never processed. May raise on an odd body (the receiver treats that as None)."""

    def record(
        self, payload: dict[str, Any], tenant_slug: str, settings: Settings
    ) -> InboundConversation | None:
        """The messages the event stands for; may raise RecordError or ProviderAPIError."""


def parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RecordError(f"body is not valid JSON: {exc}") from None


def parse_object(raw: bytes) -> dict[str, Any]:
    payload = parse_json(raw)
    if not isinstance(payload, dict):
        raise RecordError("body is not a JSON object")
    return payload


def single_event(raw: bytes) -> list[tuple[dict[str, Any], bytes]]:
    return [(parse_object(raw), raw)]


def credentials(settings: Settings, tenant_slug: str, provider: str) -> dict[str, str]:
    found = settings.connector_credentials.get(f"{tenant_slug}/{provider}")
    if not found:
        raise ProviderAPIError(f"no {provider} API credentials configured for {tenant_slug}")
    return found


def own_authors(settings: Settings, tenant_slug: str, provider: str) -> frozenset[str]:
    """Author ids our own integration writes under: never ingested (loop prevention)."""
    return frozenset(settings.connector_integration_users.get(f"{tenant_slug}/{provider}", []))
