"""Receiving a CRM webhook: verify, record the delivery once, ingest, answer.

Order matters: the signature is checked on the raw bytes before anything is parsed or stored
(a forged delivery leaves no trace); the delivery's own id is inserted under a unique key in
the same transaction as the messages it carries, so the same event delivered 50 times at once
stores one row; and the 2xx goes out only after that transaction commits. A body that verifies
but cannot be understood is kept as a dead event for inspection and answered 400.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine as DbEngine
from sqlalchemy.exc import IntegrityError

from connectors.chatwoot import mapper as chatwoot
from connectors.ingest import ingest_conversation
from connectors.records import InboundConversation, RecordError
from connectors.signatures import SignatureError, verify_chatwoot, verify_zendesk
from connectors.zendesk import mapper as zendesk
from core.crud.tenants import get_tenant_by_slug
from core.db import session_scope
from core.models import WebhookEvent, WebhookEventStatus, utcnow
from core.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    provider: str
    tenant_slug: str
    raw: bytes
    headers: Mapping[str, str]  # lower-case names


@dataclass(frozen=True)
class Outcome:
    status_code: int
    body: dict[str, Any] = field(default_factory=dict)


def _verify(delivery: Delivery, secrets: list[str], settings: Settings, now: float | None) -> None:
    h, tolerance = delivery.headers, settings.webhook_tolerance_s
    if delivery.provider == "zendesk":
        verify_zendesk(
            delivery.raw,
            h.get("x-zendesk-webhook-signature"),
            h.get("x-zendesk-webhook-signature-timestamp"),
            secrets,
            tolerance_s=tolerance,
            now=now,
        )
    else:
        verify_chatwoot(
            delivery.raw,
            h.get("x-chatwoot-signature"),
            h.get("x-chatwoot-timestamp"),
            secrets,
            tolerance_s=tolerance,
            now=now,
        )


def _map(delivery: Delivery) -> tuple[str, InboundConversation | None]:
    try:
        payload = json.loads(delivery.raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RecordError(f"body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise RecordError("body is not a JSON object")
    if delivery.provider == "zendesk":
        return zendesk.map_event(payload)
    return chatwoot.map_event(payload, delivery.headers.get("x-chatwoot-delivery"))


SUPPORTED = ("chatwoot", "zendesk")


def receive(
    *, db: DbEngine, settings: Settings, delivery: Delivery, now: float | None = None
) -> Outcome:
    context = f"tenant={delivery.tenant_slug} provider={delivery.provider}"
    if delivery.provider not in SUPPORTED:
        return Outcome(404, {"detail": f"unknown provider {delivery.provider!r}"})
    with session_scope(db) as session:
        tenant = get_tenant_by_slug(session=session, slug=delivery.tenant_slug)
    if tenant is None or tenant.id is None:
        return Outcome(404, {"detail": f"tenant {delivery.tenant_slug!r} not found"})
    secrets = settings.connector_secrets.get(f"{delivery.tenant_slug}/{delivery.provider}", [])
    if not secrets:
        return Outcome(401, {"detail": f"no webhook secret configured for {delivery.provider}"})
    try:
        _verify(delivery, secrets, settings, now)
    except SignatureError as exc:
        log.warning("webhook refused (%s): %s", context, exc)
        return Outcome(401, {"detail": f"signature rejected: {exc}"})

    body_hash = hashlib.sha256(delivery.raw).hexdigest()
    event = WebhookEvent(
        tenant_id=tenant.id,
        provider=delivery.provider,
        event_id=f"body:{body_hash}",
        body_hash=body_hash,
        body=delivery.raw.decode("utf-8", errors="replace"),
        attempts=1,
    )
    try:
        event.event_id, record = _map(delivery)
    except RecordError as exc:
        event.status, event.last_error = WebhookEventStatus.DEAD, f"malformed: {exc}"
        _store_once(db, event)
        log.warning("malformed webhook kept as dead event (%s): %s", context, exc)
        return Outcome(400, {"detail": f"malformed {delivery.provider} event: {exc}"})

    try:
        with session_scope(db) as session:
            session.add(event)
            session.flush()  # the unique key: a concurrent duplicate fails here
            if record is not None:
                ingest_conversation(session=session, tenant_id=tenant.id, record=record)
            event.status, event.processed_at = WebhookEventStatus.PROCESSED, utcnow()
    except IntegrityError:
        return Outcome(200, {"status": "duplicate", "event_id": event.event_id})
    return Outcome(200, {"status": "processed", "event_id": event.event_id})


def _store_once(db: DbEngine, event: WebhookEvent) -> None:
    try:
        with session_scope(db) as session:
            session.add(event)
    except IntegrityError:
        pass  # the same malformed body again: already kept
