"""Erasure that reaches every copy of what was erased.

A person's words live in five places: the message rows, the raw webhook bodies kept for replay,
the training files on disk (train, validation, regression), the lineage of every adapter trained
on them, and the adapters' weights. One erasure, whoever asks for it (`supportloop privacy
forget`, or a provider event that redacts a message or deletes a conversation), goes through
here:

1. in one transaction: the adapter versions whose lineage includes an erased message (or the
   erased customer) are marked tainted *before* the rows go (lineage rows cascade away with the
   messages); suggestions, messages and conversations are deleted; every raw webhook body about
   an affected conversation is wiped (the row stays, so the same delivery again is still a
   duplicate); tombstones keyed by the provider's ids are written, so a replay or a backfill
   never brings the text back; an audit row says who, why and how much, without the content;
2. after the commit, the rows built from the erased messages are cut out of every training file.

Retraining is the caller's choice (the CLI retrains at once; a provider event leaves it to the
nightly run, which retrains on full history whenever the serving version is tainted).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import Session, col, delete, or_, select

from core.crud.adapters import retire_tainted
from core.db import id_chunks, insert_if_absent, session_scope
from core.models import (
    AdapterLineage,
    AdapterVersion,
    Conversation,
    ErasureAudit,
    ErasureTombstone,
    Message,
    Suggestion,
    TombstoneKind,
    WebhookEvent,
    WebhookEventStatus,
)
from core.models.types import utcnow

log = logging.getLogger(__name__)
ANY_SOURCE = "*"  # email tombstones hold whichever provider the address comes back through


def email_key(email: str) -> str:
    """The tombstone and audit key of an address: its hash, so neither keeps the address."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


@dataclass(frozen=True)
class Tombstone:
    source: str
    kind: TombstoneKind
    external_id: str


@dataclass
class Erased:
    """What one erasure touched; the ids drive the training-file scrub after the commit."""

    conversation_ids: set[int] = field(default_factory=set)
    message_ids: set[int] = field(default_factory=set)
    customer_ids: set[int] = field(default_factory=set)
    raw_bodies: int = 0
    training_files: int = 0
    tainted_versions: list[str] = field(default_factory=list)
    audit_id: int | None = None

    def counts(self) -> dict[str, int | list[str]]:
        return {
            "conversations": len(self.conversation_ids),
            "messages": len(self.message_ids),
            "raw_webhook_bodies": self.raw_bodies,
            "training_files": self.training_files,
            "tainted_versions": self.tainted_versions,
        }

    def __bool__(self) -> bool:
        return bool(self.conversation_ids or self.message_ids or self.raw_bodies)


_TOMBSTONES = ErasureTombstone.__table__  # type: ignore[attr-defined]
_INSERT_TOMBSTONE = insert_if_absent(_TOMBSTONES)


def add_tombstones(session: Session, tenant_id: int, tombstones: Iterable[Tombstone]) -> None:
    """Insert-if-absent per key: two erasures of overlapping data (or a retried one) never
    collide on the unique key."""
    insert = _INSERT_TOMBSTONE[session.get_bind().dialect.name]
    for tombstone in set(tombstones):
        session.execute(
            insert.values(
                tenant_id=tenant_id,
                source=tombstone.source,
                kind=tombstone.kind,
                external_id=tombstone.external_id[:200],
                created_at=utcnow(),
            )
        )


def tombstoned(
    session: Session, tenant_id: int, source: str, keys: Iterable[tuple[TombstoneKind, str]]
) -> set[tuple[str, str]]:
    """Which (kind, provider id) pairs were erased before (email keys for EMAIL), in one
    query, so ingestion pays a single look-up per record."""
    wanted = {(kind, key) for kind, key in keys if key}
    if not wanted:
        return set()
    found = session.exec(
        select(ErasureTombstone.kind, ErasureTombstone.external_id).where(
            ErasureTombstone.tenant_id == tenant_id,
            col(ErasureTombstone.source).in_([source, ANY_SOURCE]),
            col(ErasureTombstone.external_id).in_({key for _, key in wanted}),
        )
    ).all()
    return {(kind, key) for kind, key in found} & {(str(k), key) for k, key in wanted}


def erase_rows(
    session: Session,
    *,
    tenant_id: int,
    conversation_ids: Iterable[int] = (),
    message_ids: Iterable[int] = (),
    customer_ids: Iterable[int] = (),
    tombstones: Iterable[Tombstone] = (),
    actor: str,
    reason: str,
    subject: dict[str, object] | None = None,
) -> Erased:
    """Step 1 (see the module docstring), inside the caller's transaction. Whole conversations
    go by ``conversation_ids`` (and all of ``customer_ids``' conversations); single messages by
    ``message_ids``. Ids of another tenant are ignored."""
    erased = Erased(customer_ids=set(customer_ids))
    conversations = set(conversation_ids)
    if erased.customer_ids:
        conversations |= {
            cid
            for cid in session.exec(
                select(Conversation.id).where(
                    Conversation.tenant_id == tenant_id,
                    col(Conversation.customer_id).in_(erased.customer_ids),
                )
            ).all()
            if cid is not None
        }
    refs: set[tuple[str, str]] = set()
    for chunk in id_chunks(sorted(conversations)):
        for cid, source, external_id in session.exec(
            select(Conversation.id, Conversation.source, Conversation.external_id).where(
                Conversation.tenant_id == tenant_id, col(Conversation.id).in_(chunk)
            )
        ).all():
            if cid is not None:
                erased.conversation_ids.add(cid)
            if external_id is not None:
                refs.add((source, external_id))
    single = set(message_ids)
    for chunk in id_chunks(sorted(single)):
        for mid, cid in session.exec(
            select(Message.id, Message.conversation_id).where(
                Message.tenant_id == tenant_id, col(Message.id).in_(chunk)
            )
        ).all():
            if mid is not None:
                erased.message_ids.add(mid)
            # A raw body about the conversation may carry the message's text too.
            conversation = session.get(Conversation, cid)
            if conversation is not None and conversation.external_id is not None:
                refs.add((conversation.source, conversation.external_id))
    for chunk in id_chunks(sorted(erased.conversation_ids)):
        erased.message_ids |= {
            mid
            for mid in session.exec(
                select(Message.id).where(col(Message.conversation_id).in_(chunk))
            ).all()
            if mid is not None
        }

    erased.tainted_versions = _taint(session, tenant_id, erased)
    for chunk in id_chunks(sorted(erased.message_ids)):
        session.exec(delete(Suggestion).where(col(Suggestion.reply_to_message_id).in_(chunk)))
        session.exec(delete(Message).where(col(Message.id).in_(chunk)))
    for chunk in id_chunks(sorted(erased.conversation_ids)):
        session.exec(delete(Suggestion).where(col(Suggestion.conversation_id).in_(chunk)))
        session.exec(delete(Conversation).where(col(Conversation.id).in_(chunk)))
    for source, external_id in refs:
        erased.raw_bodies += _wipe_bodies(session, tenant_id, source, external_id)
    add_tombstones(session, tenant_id, tombstones)
    audit = ErasureAudit(
        tenant_id=tenant_id,
        actor=actor[:200],
        reason=reason[:200],
        subject=subject or {},
        counts=erased.counts(),
    )
    session.add(audit)
    session.flush()
    erased.audit_id = audit.id
    log.info(
        "erased tenant=%s (%s, by %s): %s", tenant_id, reason, actor, json.dumps(erased.counts())
    )
    return erased


def _taint(session: Session, tenant_id: int, erased: Erased) -> list[str]:
    tainted_ids: set[int] = set()
    for chunk in list(id_chunks(erased.message_ids)) or [[]]:
        clauses = [col(AdapterLineage.message_id).in_(chunk)]
        if erased.customer_ids:
            clauses.append(col(AdapterLineage.customer_id).in_(erased.customer_ids))
        tainted_ids |= set(
            session.exec(select(AdapterLineage.adapter_version_id).where(or_(*clauses))).all()
        )
    names = []
    for version in session.exec(
        select(AdapterVersion).where(
            AdapterVersion.tenant_id == tenant_id, col(AdapterVersion.id).in_(tainted_ids)
        )
    ).all():
        version.tainted = True
        session.add(version)
        names.append(version.name)
    if names:
        retire_tainted(session=session, tenant_id=tenant_id)  # those not serving go at once
    return sorted(names)


def _wipe_bodies(session: Session, tenant_id: int, source: str, external_id: str) -> int:
    result = session.exec(
        update(WebhookEvent)
        .where(
            col(WebhookEvent.tenant_id) == tenant_id,
            col(WebhookEvent.provider) == source,
            col(WebhookEvent.conversation_ref) == external_id,
            col(WebhookEvent.status) != WebhookEventStatus.ERASED,
        )
        .values(
            body="",
            status=WebhookEventStatus.ERASED,
            last_error=None,
            next_attempt_at=None,
        )
    )
    return int(result.rowcount or 0)


def scrub_training_files(directory: Path, erased: Erased) -> int:
    """Step 2: drop every example built from an erased message, conversation or customer from
    every JSONL file under ``directory``; returns how many files changed. A file is replaced
    whole (written beside it, then renamed), so a crash leaves the old or the new one."""
    if not (erased.message_ids or erased.conversation_ids or erased.customer_ids):
        return 0
    changed = 0
    for path in sorted(directory.rglob("*.jsonl")) if directory.is_dir() else []:
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        kept = [line for line in lines if not _built_from_erased(json.loads(line), erased)]
        if len(kept) == len(lines):
            continue
        tmp = path.with_suffix(".scrub-tmp")
        tmp.write_text("".join(f"{line}\n" for line in kept))
        tmp.replace(path)
        changed += 1
    erased.training_files += changed
    return changed


def _built_from_erased(row: dict[str, object], erased: Erased) -> bool:
    message_ids = row.get("message_ids")
    return (
        row.get("conversation_id") in erased.conversation_ids
        or row.get("customer_id") in erased.customer_ids
        or (isinstance(message_ids, list) and any(m in erased.message_ids for m in message_ids))
    )


def record_files(session: Session, erased: Erased) -> None:
    """The training-file count joins the erasure's audit row once the files are scrubbed."""
    audit = session.get(ErasureAudit, erased.audit_id) if erased.audit_id else None
    if audit is not None:
        audit.counts = {**audit.counts, "training_files": erased.training_files}
        session.add(audit)


def erase(db: DbEngine, *, training_dir: Path, tenant_id: int, **what: Any) -> Erased:
    """Both steps with their own transactions (for callers outside a request's write)."""
    with session_scope(db) as session:
        erased = erase_rows(session, tenant_id=tenant_id, **what)
    scrub_training_files(training_dir, erased)
    with session_scope(db) as session:
        record_files(session, erased)
    return erased
