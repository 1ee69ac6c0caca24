"""Receiving a CRM webhook: verify, record the delivery once, ingest, answer; retry what failed.

Order matters: the signature is checked on the raw bytes before anything is parsed or stored
(a forged delivery leaves no trace); the delivery's own id is inserted under a unique key in
the same transaction as the messages it carries, so the same event delivered 50 times at once
stores one row; and the 2xx goes out only after that transaction commits. A body that verifies
but cannot be understood is kept as a dead event and answered 400. When the provider's API is
needed (the webhook is only a doorbell) and fails, the event is kept as failed, answered 2xx,
and retried with exponential backoff until it succeeds or is dead-lettered; `supportloop
connectors replay` re-runs dead events, safely, since ingestion is idempotent.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine as DbEngine
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from connectors.chatwoot import mapper as chatwoot
from connectors.freshdesk import mapper as freshdesk
from connectors.freshdesk.client import fetch_ticket
from connectors.http_retry import ProviderAPIError
from connectors.hubspot import mapper as hubspot
from connectors.hubspot.client import fetch_message
from connectors.ingest import ingest_conversation
from connectors.intercom import mapper as intercom
from connectors.intercom.client import fetch_conversation
from connectors.records import InboundConversation, RecordError
from connectors.salesforce import mapper as salesforce
from connectors.salesforce import soap
from connectors.salesforce.client import fetch_case
from connectors.signatures import (
    SignatureError,
    verify_chatwoot,
    verify_hubspot_v3,
    verify_intercom,
    verify_shared_token,
    verify_zendesk,
)
from connectors.zendesk import mapper as zendesk
from core.crud.tenants import get_tenant_by_slug
from core.db import session_scope
from core.models import Tenant, WebhookEvent, WebhookEventStatus, utcnow
from core.settings import Settings

log = logging.getLogger(__name__)
SUPPORTED = ("chatwoot", "freshdesk", "hubspot", "intercom", "salesforce", "zendesk")
TOKEN_HEADER = "x-supportloop-token"  # Freshdesk signs nothing: a secret header we configure


@dataclass(frozen=True)
class Delivery:
    provider: str
    tenant_slug: str
    raw: bytes
    headers: Mapping[str, str]  # lower-case names
    method: str = "POST"
    url: str = ""  # the exact URL the provider called (HubSpot signs it)


@dataclass(frozen=True)
class Outcome:
    status_code: int
    body: dict[str, Any] = field(default_factory=dict)
    xml: str | None = None  # Salesforce expects a SOAP Ack instead of JSON


# -- per-provider steps ----------------------------------------------------------------------


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
    elif delivery.provider == "chatwoot":
        verify_chatwoot(
            delivery.raw,
            h.get("x-chatwoot-signature"),
            h.get("x-chatwoot-timestamp"),
            secrets,
            tolerance_s=tolerance,
            now=now,
        )
    elif delivery.provider == "hubspot":
        verify_hubspot_v3(
            delivery.raw,
            h.get("x-hubspot-signature-v3"),
            h.get("x-hubspot-request-timestamp"),
            secrets,
            method=delivery.method,
            uri=delivery.url,
            tolerance_s=tolerance,
            now=now,
        )
    elif delivery.provider == "salesforce":
        # Outbound Messages are unsigned: the organisation id must be one we were configured with.
        try:
            org = soap.parse(delivery.raw).organization_id
        except RecordError as exc:
            raise SignatureError(f"cannot check the organisation id: {exc}") from None
        verify_shared_token(org, secrets, header="OrganizationId")
    elif delivery.provider == "freshdesk":
        verify_shared_token(h.get(TOKEN_HEADER), secrets, header="X-SupportLoop-Token")
    else:
        verify_intercom(delivery.raw, h.get("x-hub-signature"), secrets)


def _parse(raw: bytes) -> dict[str, Any]:
    payload = _parse_any(raw)
    if not isinstance(payload, dict):
        raise RecordError("body is not a JSON object")
    return payload


def _parse_any(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RecordError(f"body is not valid JSON: {exc}") from None


def _items(provider: str, raw: bytes) -> list[tuple[dict[str, Any], bytes]]:
    """The events in one delivery, each with the bytes kept for replay. HubSpot batches events
    in a JSON array; the others send one object."""
    if provider == "salesforce":
        return [
            (payload, json.dumps(payload).encode())
            for payload in (
                {
                    "notification_id": n.notification_id,
                    "object_type": n.object_type,
                    "record_id": n.record_id,
                }
                for n in soap.parse(raw).notifications
            )
        ]
    if provider != "hubspot":
        return [(_parse(raw), raw)]
    payload = _parse_any(raw)
    if not isinstance(payload, list) or not all(isinstance(e, dict) for e in payload):
        raise RecordError("body is not a JSON array of events")
    return [(event, json.dumps(event).encode()) for event in payload]


def _event_id(
    provider: str, payload: dict[str, Any], headers: Mapping[str, str], body: bytes
) -> str:
    if provider == "freshdesk":
        return freshdesk.ticket_ref(payload, body)[0]
    if provider == "salesforce":
        return str(payload["notification_id"])
    if provider == "zendesk":
        return zendesk.map_event(payload)[0]
    if provider == "chatwoot":
        return chatwoot.map_event(payload, headers.get("x-chatwoot-delivery"))[0]
    if provider == "hubspot":
        return hubspot.event_key(payload)[0]
    return intercom.notification(payload)[0]


def _record(
    provider: str, tenant_slug: str, payload: dict[str, Any], settings: Settings
) -> InboundConversation | None:
    """The messages an event stands for; may call the provider's API (ProviderAPIError)."""
    if provider == "zendesk":
        return zendesk.map_event(payload, own_authors(settings, tenant_slug, provider))[1]
    if provider == "chatwoot":
        return chatwoot.map_event(payload, None)[1]
    if provider == "salesforce":
        if payload.get("object_type") != "Case":
            return None
        api = _credentials(settings, tenant_slug, provider)
        try:
            data = fetch_case(
                api_base=api["api_base"], token=api["token"], case_id=str(payload["record_id"])
            )
        except ValueError as exc:
            raise RecordError(str(exc)) from None
        return salesforce.case(data)
    if provider == "freshdesk":
        _, ticket_id = freshdesk.ticket_ref(payload, b"")
        api = _credentials(settings, tenant_slug, provider)
        data, conversations = fetch_ticket(
            api_base=api["api_base"], token=api["token"], ticket_id=ticket_id
        )
        return freshdesk.ticket(data, conversations)
    if provider == "hubspot":
        _, thread_id, message_id = hubspot.event_key(payload)
        if thread_id is None or message_id is None:
            return None
        api = _credentials(settings, tenant_slug, provider)
        data = fetch_message(
            api_base=api["api_base"], token=api["token"], thread_id=thread_id, message_id=message_id
        )
        return hubspot.message(thread_id, data)
    _, conversation_id = intercom.notification(payload)
    if conversation_id is None:
        return None
    api = _credentials(settings, tenant_slug, provider)
    data = fetch_conversation(
        api_base=api["api_base"], token=api["token"], conversation_id=conversation_id
    )
    return intercom.conversation(data)


def own_authors(settings: Settings, tenant_slug: str, provider: str) -> frozenset[str]:
    return frozenset(settings.connector_integration_users.get(f"{tenant_slug}/{provider}", []))


def _credentials(settings: Settings, tenant_slug: str, provider: str) -> dict[str, str]:
    credentials = settings.connector_credentials.get(f"{tenant_slug}/{provider}")
    if not credentials:
        raise ProviderAPIError(f"no {provider} API credentials configured for {tenant_slug}")
    return credentials


# -- receiving ---------------------------------------------------------------------------------


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

    try:
        items = _items(delivery.provider, delivery.raw)
    except RecordError as exc:
        _store_once(
            db,
            _event(
                tenant.id,
                delivery.provider,
                delivery.raw,
                status=WebhookEventStatus.DEAD,
                error=f"malformed: {exc}",
            ),
        )
        log.warning("malformed webhook kept as dead event (%s): %s", context, exc)
        return Outcome(400, {"detail": f"malformed {delivery.provider} event: {exc}"})
    outcomes = [
        _receive_event(db, settings, tenant.id, delivery, payload, body) for payload, body in items
    ]
    if delivery.provider == "salesforce":
        worst = max(outcome.status_code for outcome in outcomes)
        if worst < 400:  # every notification is stored (or queued): acknowledge them all
            return Outcome(
                200, {"status": "ack", "events": [o.body for o in outcomes]}, xml=soap.ACK
            )
    if len(outcomes) == 1:
        return outcomes[0]
    worst = max(outcome.status_code for outcome in outcomes)  # 400 > 202 > 200
    return Outcome(worst, {"status": "batch", "events": [outcome.body for outcome in outcomes]})


def _event(
    tenant_id: int,
    provider: str,
    body: bytes,
    *,
    status: str = WebhookEventStatus.RECEIVED,
    error: str | None = None,
) -> WebhookEvent:
    body_hash = hashlib.sha256(body).hexdigest()
    return WebhookEvent(
        tenant_id=tenant_id,
        provider=provider,
        event_id=f"body:{body_hash}",
        body_hash=body_hash,
        body=body.decode("utf-8", errors="replace"),
        attempts=1,
        status=status,
        last_error=error,
    )


def _receive_event(
    db: DbEngine,
    settings: Settings,
    tenant_id: int,
    delivery: Delivery,
    payload: dict[str, Any],
    body: bytes,
) -> Outcome:
    context = f"tenant={delivery.tenant_slug} provider={delivery.provider}"
    event = _event(tenant_id, delivery.provider, body)
    try:
        event.event_id = _event_id(delivery.provider, payload, delivery.headers, body)
        if _already_received(db, event):
            return Outcome(200, {"status": "duplicate", "event_id": event.event_id})
        record = _record(delivery.provider, delivery.tenant_slug, payload, settings)
    except RecordError as exc:
        event.status, event.last_error = WebhookEventStatus.DEAD, f"malformed: {exc}"
        _store_once(db, event)
        log.warning("malformed webhook kept as dead event (%s): %s", context, exc)
        return Outcome(400, {"detail": f"malformed {delivery.provider} event: {exc}"})
    except ProviderAPIError as exc:
        _schedule_retry(event, str(exc), settings)
        _store_once(db, event)
        log.warning("webhook queued for retry (%s event=%s): %s", context, event.event_id, exc)
        return Outcome(202, {"status": "queued", "event_id": event.event_id})

    try:
        with session_scope(db) as session:
            session.add(event)
            session.flush()  # the unique key: a concurrent duplicate fails here
            if record is not None:
                ingest_conversation(session=session, tenant_id=tenant_id, record=record)
            event.status, event.processed_at = WebhookEventStatus.PROCESSED, utcnow()
    except IntegrityError:
        return Outcome(200, {"status": "duplicate", "event_id": event.event_id})
    return Outcome(200, {"status": "processed", "event_id": event.event_id})


def _already_received(db: DbEngine, event: WebhookEvent) -> bool:
    with session_scope(db) as session:
        return (
            session.exec(
                select(WebhookEvent.id).where(
                    WebhookEvent.tenant_id == event.tenant_id,
                    WebhookEvent.provider == event.provider,
                    WebhookEvent.event_id == event.event_id,
                )
            ).first()
            is not None
        )


def _store_once(db: DbEngine, event: WebhookEvent) -> None:
    try:
        with session_scope(db) as session:
            session.add(event)
    except IntegrityError:
        pass  # the same event again: already kept


def _schedule_retry(
    event: WebhookEvent, error: str, settings: Settings, now: datetime | None = None
) -> None:
    """Exponential backoff with jitter; dead after the configured number of attempts."""
    event.last_error = error
    if event.attempts >= settings.webhook_max_attempts:
        event.status, event.next_attempt_at = WebhookEventStatus.DEAD, None
        return
    delay = settings.webhook_retry_base_s * 2 ** (event.attempts - 1) * random.uniform(0.5, 1.5)
    event.status = WebhookEventStatus.FAILED
    event.next_attempt_at = (now or utcnow()) + timedelta(seconds=delay)


# -- retrying and replaying ---------------------------------------------------------------------


def _process_stored(db: DbEngine, settings: Settings, event_pk: int, *, now: datetime) -> bool:
    """Run one stored event again; True when it is processed now."""
    with session_scope(db) as session:
        event = session.get(WebhookEvent, event_pk)
        tenant = session.get(Tenant, event.tenant_id) if event else None
    if event is None or tenant is None or tenant.id is None:
        return False
    try:
        record = _record(event.provider, tenant.slug, _parse(event.body.encode()), settings)
    except (RecordError, ProviderAPIError) as exc:
        event.attempts += 1
        if isinstance(exc, RecordError):
            event.status, event.last_error = WebhookEventStatus.DEAD, f"malformed: {exc}"
        else:
            _schedule_retry(event, str(exc), settings, now)
        with session_scope(db) as session:
            session.merge(event)
        return False
    with session_scope(db) as session:
        if record is not None:
            ingest_conversation(session=session, tenant_id=tenant.id, record=record)
        event.attempts += 1
        event.status, event.processed_at = WebhookEventStatus.PROCESSED, utcnow()
        event.last_error, event.next_attempt_at = None, None
        session.merge(event)
    return True


def retry_due(*, db: DbEngine, settings: Settings, now: datetime | None = None) -> int:
    """Retry failed events whose backoff has passed; returns how many succeeded."""
    now = now or utcnow()
    with session_scope(db) as session:
        due = session.exec(
            select(WebhookEvent.id).where(
                WebhookEvent.status == WebhookEventStatus.FAILED,
                col(WebhookEvent.next_attempt_at) <= now,
            )
        ).all()
    return sum(_process_stored(db, settings, pk, now=now) for pk in due if pk is not None)


def replay(*, db: DbEngine, settings: Settings, tenant_slug: str | None = None) -> tuple[int, int]:
    """Re-run dead and failed events now: (processed, still failing). Safe to run twice."""
    with session_scope(db) as session:
        query = select(WebhookEvent.id).where(
            col(WebhookEvent.status).in_([WebhookEventStatus.DEAD, WebhookEventStatus.FAILED])
        )
        if tenant_slug is not None:
            query = query.join(Tenant, col(Tenant.id) == col(WebhookEvent.tenant_id)).where(
                Tenant.slug == tenant_slug
            )
        pending = session.exec(query.order_by(col(WebhookEvent.id))).all()
    now = utcnow()
    done = sum(_process_stored(db, settings, pk, now=now) for pk in pending if pk is not None)
    return done, len(pending) - done
