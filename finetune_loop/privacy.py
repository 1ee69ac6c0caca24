"""Right to erasure: the person's conversations go, and so does every model that saw them.

A request names a person three ways: our customer id (widget customers), their email, or the
id a CRM knows them by (``PROVIDER:ID``); CRM and imported conversations are linked to a
customer by those at ingestion. The erasure itself (rows, raw webhook bodies, training files,
lineage and taint, tombstones, the audit row) is core/erasure.py's; this module finds whom the
request names, leaves tombstones for the person's provider ids and email so that a replay or a
backfill cannot bring them back, and retrains without them. The registry retires tainted
versions as soon as a clean one is active (core.crud.adapters), and a tainted version is never
a rollback target.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import Session

from core.crud.adapters import stop_serving_tainted
from core.crud.customers import customers_matching, external_ids_of
from core.crud.tenants import require_tenant
from core.db import session_scope
from core.erasure import ANY_SOURCE, Tombstone, email_key, erase_rows, record_files
from core.erasure import scrub_training_files as scrub
from core.errors import InvalidError, NotFoundError
from core.models import Customer, TombstoneKind
from core.settings import Settings
from finetune_loop.run import RunOutcome, RunResult, run_once

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErasureRequest:
    """Exactly one of the three ways to name a person."""

    customer_id: int | None = None
    email: str | None = None
    external_id: str | None = None  # "PROVIDER:ID", e.g. "zendesk:90001"

    def __post_init__(self) -> None:
        given = [v for v in (self.customer_id, self.email, self.external_id) if v is not None]
        if len(given) != 1:
            raise InvalidError("name the person by exactly one of customer id, email, ID")
        if self.external_id is not None:
            provider, _, person = self.external_id.partition(":")
            if not provider or not person:
                raise InvalidError(
                    f"external id {self.external_id!r} is not PROVIDER:ID (e.g. zendesk:90001)"
                )
        if self.email is not None and "@" not in self.email:
            raise InvalidError(f"{self.email!r} is not an email address")

    def describe(self) -> dict[str, object]:
        """For the audit: ids as given, an email only as its hash."""
        if self.customer_id is not None:
            return {"customer": self.customer_id}
        if self.email is not None:
            return {"email_sha256": email_key(self.email)}
        return {"external_id": self.external_id}


@dataclass
class ForgetReport:
    customers: int
    conversations_deleted: int
    messages_deleted: int
    raw_bodies_wiped: int
    tainted_versions: list[str]
    training_files_rewritten: int
    retrain: RunOutcome | None


def _people(session: Session, tenant_id: int, request: ErasureRequest) -> list[Customer]:
    if request.customer_id is not None:
        customer = session.get(Customer, request.customer_id)
        if customer is None or customer.tenant_id != tenant_id:
            raise NotFoundError(f"customer {request.customer_id} not found")
        return [customer]
    return customers_matching(
        session=session, tenant_id=tenant_id, email=request.email, external=request.external_id
    )


def _tombstones(
    session: Session, request: ErasureRequest, people: list[Customer]
) -> list[Tombstone]:
    """Every key the person may come back under: their provider ids and their emails."""
    ids = [p.id for p in people if p.id is not None]
    stones = [
        Tombstone(known.source, TombstoneKind.PERSON, known.external_id)
        for known in external_ids_of(session=session, customer_ids=ids)
    ]
    emails = {p.email for p in people if p.email} | ({request.email} if request.email else set())
    stones += [Tombstone(ANY_SOURCE, TombstoneKind.EMAIL, email_key(e)) for e in emails]
    if request.external_id is not None:
        provider, _, person = request.external_id.partition(":")
        stones.append(Tombstone(provider, TombstoneKind.PERSON, person))
    return stones


def forget(
    *,
    db: DbEngine,
    settings: Settings,
    tenant_slug: str,
    request: ErasureRequest,
    actor: str,
    retrain: bool = True,
) -> ForgetReport:
    """Erase everyone the request names. A request by email or provider id that matches
    nobody still leaves its tombstones (the person may arrive later through a backfill)."""
    with session_scope(db) as session:
        tenant_id = require_tenant(session=session, slug=tenant_slug).id
        assert tenant_id is not None
        people = _people(session, tenant_id, request)
        erased = erase_rows(
            session,
            tenant_id=tenant_id,
            customer_ids=[p.id for p in people if p.id is not None],
            tombstones=_tombstones(session, request, people),
            actor=actor,
            reason="privacy forget",
            subject=request.describe(),
        )
    scrub(settings.training_dir(tenant_slug), erased)
    with session_scope(db) as session:
        record_files(session, erased)
    outcome = None
    if retrain and erased.tainted_versions:
        outcome = run_once(db=db, settings=settings, tenant_slug=tenant_slug, force=True, full=True)
    if outcome is None or outcome.status != RunResult.PUBLISHED:
        with session_scope(db) as session:
            if stop_serving_tainted(session=session, tenant_id=tenant_id):
                log.warning(
                    "tenant=%s serves the base model until a clean version passes", tenant_slug
                )
    return ForgetReport(
        customers=len(people),
        conversations_deleted=len(erased.conversation_ids),
        messages_deleted=len(erased.message_ids),
        raw_bodies_wiped=erased.raw_bodies,
        tainted_versions=erased.tainted_versions,
        training_files_rewritten=erased.training_files,
        retrain=outcome,
    )


def forget_customer(
    *, db: DbEngine, settings: Settings, tenant_slug: str, customer_id: int, retrain: bool = True
) -> ForgetReport:
    return forget(
        db=db,
        settings=settings,
        tenant_slug=tenant_slug,
        request=ErasureRequest(customer_id=customer_id),
        actor="api",
        retrain=retrain,
    )
