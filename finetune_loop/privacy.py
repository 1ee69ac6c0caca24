"""Right to erasure: the customer's conversations go, and so does every model that saw them.

Order matters. Lineage rows (which messages trained which version) are deleted with the
messages, so the versions trained on this customer are marked tainted first. Then the
conversations are deleted, the customer's examples are cut out of every training file kept on
disk (train, validation and the regression set), and the loop retrains on what is left. The
registry retires tainted versions as soon as a clean one is active (core.crud.adapters), and a
tainted version is never a rollback target.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import col, delete, or_, select

from core.crud.adapters import retire_tainted, stop_serving_tainted
from core.crud.tenants import require_tenant
from core.db import session_scope
from core.errors import NotFoundError
from core.models import AdapterLineage, AdapterVersion, Conversation, Customer, Message, Suggestion
from core.settings import Settings
from finetune_loop.run import RunOutcome, RunResult, run_once, tenant_dir

log = logging.getLogger(__name__)


@dataclass
class ForgetReport:
    conversations_deleted: int
    messages_deleted: int
    tainted_versions: list[str]
    training_files_rewritten: int
    retrain: RunOutcome | None


def _scrub_file(path: Path, conversation_ids: set[int], customer_id: int) -> bool:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    rows = [json.loads(line) for line in lines]
    kept = [
        line
        for line, row in zip(lines, rows, strict=True)
        if row.get("customer_id") != customer_id
        and row.get("conversation_id") not in conversation_ids
    ]
    if len(kept) == len(lines):
        return False
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{line}\n" for line in kept))
    tmp.replace(path)
    return True


def forget_customer(
    *, db: DbEngine, settings: Settings, tenant_slug: str, customer_id: int, retrain: bool = True
) -> ForgetReport:
    with session_scope(db) as session:
        tenant_id = require_tenant(session=session, slug=tenant_slug).id
        customer = session.get(Customer, customer_id)
        if customer is None or customer.tenant_id != tenant_id:
            raise NotFoundError(f"customer {customer_id} not found for tenant {tenant_slug!r}")
        conversation_ids = {
            cid
            for cid in session.exec(
                select(Conversation.id).where(
                    Conversation.tenant_id == tenant_id, Conversation.customer_id == customer_id
                )
            ).all()
            if cid is not None
        }
        message_ids = set(
            session.exec(
                select(Message.id).where(col(Message.conversation_id).in_(conversation_ids))
            ).all()
        )
        tainted_ids = set(
            session.exec(
                select(AdapterLineage.adapter_version_id).where(
                    or_(
                        col(AdapterLineage.customer_id) == customer_id,
                        col(AdapterLineage.message_id).in_(message_ids),
                    )
                )
            ).all()
        )
        tainted = []
        for version in session.exec(
            select(AdapterVersion).where(col(AdapterVersion.id).in_(tainted_ids))
        ).all():
            version.tainted = True
            session.add(version)
            tainted.append(version.name)
        session.exec(
            delete(Suggestion).where(col(Suggestion.conversation_id).in_(conversation_ids))
        )
        session.exec(delete(Message).where(col(Message.conversation_id).in_(conversation_ids)))
        session.exec(delete(Conversation).where(col(Conversation.id).in_(conversation_ids)))
        # A tainted version that is not serving is retired at once.
        retire_tainted(session=session, tenant_id=tenant_id)
    rewritten = sum(
        _scrub_file(path, conversation_ids, customer_id)
        for path in tenant_dir(settings, tenant_slug).rglob("*.jsonl")
    )
    log.info(
        "forgot customer=%s tenant=%s: %d conversations, %d messages; tainted %s",
        customer_id,
        tenant_slug,
        len(conversation_ids),
        len(message_ids),
        tainted or "nothing",
    )
    outcome = None
    if retrain and tainted:
        outcome = run_once(db=db, settings=settings, tenant_slug=tenant_slug, force=True, full=True)
    if outcome is None or outcome.status != RunResult.PUBLISHED:
        with session_scope(db) as session:
            if stop_serving_tainted(session=session, tenant_id=tenant_id):
                log.warning(
                    "tenant=%s serves the base model until a clean version passes", tenant_slug
                )
    return ForgetReport(len(conversation_ids), len(message_ids), tainted, rewritten, outcome)
