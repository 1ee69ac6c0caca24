"""Receiving a CRM webhook: verify, record the delivery once, ingest, answer; retry what failed.

Order matters: the signature is checked on the raw bytes before anything is parsed or stored
(a forged delivery leaves no trace); the delivery's own id is inserted under a unique key in
the same transaction as the messages it carries, so the same event delivered 50 times at once
stores one row; and the 2xx goes out only after that transaction commits. A body that verifies
but cannot be understood is kept as a dead event and answered 400. When the provider's API is
needed (the webhook is only a doorbell) and fails, the event is kept as failed, answered 2xx,
and retried with exponential backoff until it succeeds or is dead-lettered; `supportloop
connectors replay` re-runs dead events, safely, since ingestion is idempotent.

What differs per provider (signature scheme, batching, ids, API fetch) lives in each
connector's `webhook.py` (see connectors/webhook_spec.py); this module does the rest once.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.engine import Engine as DbEngine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from connectors.chatwoot.webhook import ChatwootWebhook
from connectors.errors import (
    ConnectorError,
    ProviderAPIError,
    ProviderGoneError,
    RecordError,
    SignatureError,
)
from connectors.freshdesk.webhook import FreshdeskWebhook
from connectors.hubspot.webhook import HubSpotWebhook
from connectors.ingest import IngestResult, ingest_conversation
from connectors.intercom.webhook import IntercomWebhook
from connectors.records import InboundConversation
from connectors.salesforce.webhook import SalesforceWebhook
from connectors.webhook_spec import Delivery, WebhookProvider, parse_object
from connectors.zendesk.webhook import ZendeskWebhook
from core.crud.tenants import get_tenant_by_slug
from core.db import read_scope, session_scope
from core.erasure import record_files, scrub_training_files
from core.group_commit import GroupCommit, Write
from core.models import Tenant, WebhookEvent, WebhookEventStatus, utcnow
from core.settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")
# What a mapper raises on a body of the wrong shape; turned into RecordError (400, kept dead) so
# that no correctly signed but odd body is ever answered 500.
MAPPER_FAULTS = (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError)


def mapped(call: Callable[[], T], what: str) -> T:
    """Run a provider's mapping step; any fault of shape becomes a RecordError that names it."""
    try:
        return call()
    except ConnectorError:
        raise
    except MAPPER_FAULTS as exc:
        raise RecordError(f"{what}: {type(exc).__name__}: {exc}") from None


@dataclass(frozen=True)
class Outcome:
    status_code: int
    body: dict[str, Any] = field(default_factory=dict)
    xml: str | None = None  # Salesforce expects a SOAP Ack instead of JSON


PROVIDERS: dict[str, WebhookProvider] = {
    provider.name: provider
    for provider in (
        ChatwootWebhook(),
        FreshdeskWebhook(),
        HubSpotWebhook(),
        IntercomWebhook(),
        SalesforceWebhook(),
        ZendeskWebhook(),
    )
}


# -- receiving ---------------------------------------------------------------------------------


def receive(
    *,
    db: DbEngine,
    settings: Settings,
    delivery: Delivery,
    now: float | None = None,
    writes: GroupCommit | None = None,
) -> Outcome:
    """``writes``: the service's group commit, so concurrent deliveries share commits; without
    it (CLI, jobs) each event commits alone."""
    store = _Store(db, writes)
    context = f"tenant={delivery.tenant_slug} provider={delivery.provider}"
    provider = PROVIDERS.get(delivery.provider)
    if provider is None:
        return Outcome(404, {"detail": f"unknown provider {delivery.provider!r}"})
    with read_scope(db) as session:
        tenant = get_tenant_by_slug(session=session, slug=delivery.tenant_slug)
    if tenant is None or tenant.id is None:
        return Outcome(404, {"detail": f"tenant {delivery.tenant_slug!r} not found"})
    secrets = settings.connector_secrets.get(f"{delivery.tenant_slug}/{delivery.provider}", [])
    if not secrets:
        return Outcome(401, {"detail": f"no webhook secret configured for {delivery.provider}"})
    try:
        provider.verify(delivery, secrets, settings.webhook_tolerance_s, now)
    except SignatureError as exc:
        log.warning("webhook refused (%s): %s", context, exc)
        return Outcome(401, {"detail": f"signature rejected: {exc}"})
    except RecordError as exc:  # authentic, but a signed field has the wrong type
        return _malformed(store, tenant.id, delivery, exc)

    try:
        items = mapped(lambda: provider.events(delivery.raw), "delivery")
        if not items:
            raise RecordError("the delivery carries no events")
    except RecordError as exc:
        return _malformed(store, tenant.id, delivery, exc)
    outcomes = [
        _receive_event(store, settings, provider, tenant.id, delivery, payload, body)
        for payload, body in items
    ]
    if provider.ack is not None:
        worst = max(outcome.status_code for outcome in outcomes)
        if worst < 400:  # every event is stored (or queued): acknowledge the whole delivery
            body = {"status": "ack", "events": [o.body for o in outcomes]}
            return Outcome(200, body, xml=provider.ack)
    if len(outcomes) == 1:
        return outcomes[0]
    worst = max(outcome.status_code for outcome in outcomes)  # 400 > 202 > 200
    return Outcome(worst, {"status": "batch", "events": [outcome.body for outcome in outcomes]})


def _malformed(store: _Store, tenant_id: int, delivery: Delivery, exc: RecordError) -> Outcome:
    """An authentic delivery we cannot understand: kept as a dead event with the reason."""
    store.once(
        _event(
            tenant_id,
            delivery.provider,
            delivery.raw,
            status=WebhookEventStatus.DEAD,
            error=f"malformed: {exc}",
        ),
    )
    log.warning(
        "malformed webhook kept as dead event (tenant=%s provider=%s): %s",
        delivery.tenant_slug,
        delivery.provider,
        exc,
    )
    return Outcome(400, {"detail": f"malformed {delivery.provider} event: {exc}"})


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


class _Store:
    """Where a delivery's writes go: one transaction each, shared with other deliveries'
    when the service's group commit is given."""

    def __init__(self, db: DbEngine, writes: GroupCommit | None) -> None:
        self.db = db
        self._writes = writes

    def write(self, work: Write[T]) -> T:
        if self._writes is not None:
            return self._writes.run(work)
        with session_scope(self.db) as session:
            return work(session)

    def once(self, event: WebhookEvent) -> None:
        def add(session: Session) -> None:
            event.id = None  # a group commit may run this twice (after a rolled-back batch)
            session.add(event)

        try:
            self.write(add)
        except IntegrityError:
            pass  # the same event again: already kept

    def already_received(self, event: WebhookEvent) -> bool:
        with read_scope(self.db) as session:
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


def _receive_event(
    store: _Store,
    settings: Settings,
    provider: WebhookProvider,
    tenant_id: int,
    delivery: Delivery,
    payload: dict[str, Any],
    body: bytes,
) -> Outcome:
    context = f"tenant={delivery.tenant_slug} provider={delivery.provider}"
    event = _event(tenant_id, delivery.provider, body)
    try:
        event.event_id = mapped(lambda: provider.event_id(payload, delivery, body), "event id")
        event.conversation_ref = _conversation_ref(provider, payload)
        if store.already_received(event):
            return Outcome(200, {"status": "duplicate", "event_id": event.event_id})
        record = mapped(lambda: provider.record(payload, delivery.tenant_slug, settings), "event")
    except RecordError as exc:
        event.status, event.last_error = WebhookEventStatus.DEAD, f"malformed: {exc}"
        store.once(event)
        log.warning("malformed webhook kept as dead event (%s): %s", context, exc)
        return Outcome(400, {"detail": f"malformed {delivery.provider} event: {exc}"})
    except ProviderGoneError as exc:  # permanent: no point retrying for hours
        event.status, event.last_error = WebhookEventStatus.DEAD, str(exc)
        store.once(event)
        log.warning("webhook dead at once (%s event=%s): %s", context, event.event_id, exc)
        return Outcome(200, {"status": "dead", "event_id": event.event_id, "reason": str(exc)})
    except ProviderAPIError as exc:
        _schedule_retry(event, str(exc), settings)
        store.once(event)
        log.warning("webhook queued for retry (%s event=%s): %s", context, event.event_id, exc)
        return Outcome(202, {"status": "queued", "event_id": event.event_id})
    origin = f"{delivery.provider} webhook event {event.event_id}"

    def ingest(session: Session) -> IngestResult | None:
        event.id = None  # a group commit may run this twice (after a rolled-back batch)
        event.status, event.processed_at = WebhookEventStatus.PROCESSED, utcnow()
        result = _ingest(session, event, record, origin)
        session.add(event)
        # The unique key: a concurrent duplicate fails here, and its messages go with it.
        session.flush()
        return result

    try:
        result = store.write(ingest)
    except IntegrityError:
        return Outcome(200, {"status": "duplicate", "event_id": event.event_id})
    _scrub_files(store, settings, delivery.tenant_slug, result)
    return Outcome(200, {"status": "processed", "event_id": event.event_id})


def _conversation_ref(provider: WebhookProvider, payload: dict[str, Any]) -> str | None:
    try:
        ref = mapped(lambda: provider.conversation_ref(payload), "conversation")
    except RecordError:
        return None
    return ref[:200] if ref else None


def _ingest(
    session: Session, event: WebhookEvent, record: InboundConversation | None, origin: str
) -> IngestResult | None:
    """Ingest the event's record; an event that erased something, or that is about something
    erased before, keeps no body (it may carry the very text that was erased)."""
    if record is None:
        return None
    event.conversation_ref = record.external_id[:200]
    result = ingest_conversation(
        session=session, tenant_id=event.tenant_id, record=record, origin=origin
    )
    if result.erased is not None or result.erased_before:
        event.body, event.status = "", WebhookEventStatus.ERASED
    return result


def _scrub_files(
    store: _Store, settings: Settings, tenant_slug: str, result: IngestResult | None
) -> None:
    """After the commit: the erased messages leave the training files too."""
    if result is None or result.erased is None:
        return
    erased = result.erased
    if scrub_training_files(settings.training_dir(tenant_slug), erased):
        store.write(lambda session: record_files(session, erased))


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
    with read_scope(db) as session:
        event = session.get(WebhookEvent, event_pk)
        tenant = session.get(Tenant, event.tenant_id) if event else None
    if event is None or tenant is None or tenant.id is None:
        return False
    try:
        provider = PROVIDERS[event.provider]
        record = mapped(
            lambda: provider.record(parse_object(event.body.encode()), tenant.slug, settings),
            "event",
        )
    except (RecordError, ProviderAPIError) as exc:
        event.attempts += 1
        if isinstance(exc, RecordError):
            event.status, event.last_error = WebhookEventStatus.DEAD, f"malformed: {exc}"
        elif isinstance(exc, ProviderGoneError):
            event.status, event.last_error = WebhookEventStatus.DEAD, str(exc)
            event.next_attempt_at = None
        else:
            _schedule_retry(event, str(exc), settings, now)
        with session_scope(db) as session:
            session.merge(event)
        return False
    store = _Store(db, None)

    def ingest(session: Session) -> IngestResult | None:
        event.attempts += 1
        event.status, event.processed_at = WebhookEventStatus.PROCESSED, utcnow()
        event.last_error, event.next_attempt_at = None, None
        result = _ingest(session, event, record, f"{event.provider} replay of {event.event_id}")
        session.merge(event)
        return result

    _scrub_files(store, settings, tenant.slug, store.write(ingest))
    return True


def retry_due(*, db: DbEngine, settings: Settings, now: datetime | None = None) -> int:
    """Retry failed events whose backoff has passed; returns how many succeeded."""
    now = now or utcnow()
    with read_scope(db) as session:
        due = session.exec(
            select(WebhookEvent.id).where(
                WebhookEvent.status == WebhookEventStatus.FAILED,
                col(WebhookEvent.next_attempt_at) <= now,
            )
        ).all()
    return sum(_process_stored(db, settings, pk, now=now) for pk in due if pk is not None)


def replay(*, db: DbEngine, settings: Settings, tenant_slug: str | None = None) -> tuple[int, int]:
    """Re-run dead and failed events now: (processed, still failing). Safe to run twice."""
    with read_scope(db) as session:
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
