"""Import conversation logs from files: the generic conversation JSONL and per-message CSV.

JSONL: one conversation a line,
    {"external_id", "channel"?, "subject"?, "customer"?: {"id"?, "email"?, "name"?},
     "messages": [{"role", "text", "sent_at", "id"?, "author"?: {"source_id", ...}}]}
CSV: one message a row, header required,
    conversation_id, role, text, timestamp [, message_id, channel, subject, customer_id,
    customer_email]
The customer (or, failing that, the author of the first customer message) is linked to one of
the tenant's customers, so `privacy forget --email/--external-id` reaches imported logs.
A bad line or row is reported with its line number and skipped; the rest still imports.
Importing the same file twice stores nothing the second time.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine as DbEngine

from connectors.errors import RecordError
from connectors.ingest import ingest_conversation
from connectors.records import (
    InboundConversation,
    InboundMessage,
    Requester,
    content_id,
    parse_role,
    parse_timestamp,
)
from core.db import session_scope

CSV_REQUIRED = ("conversation_id", "role", "text", "timestamp")
BATCH = 100  # conversations per transaction: durable commits without one fsync per row


@dataclass
class ImportReport:
    conversations_seen: int = 0
    conversations_created: int = 0
    messages_created: int = 0
    messages_skipped: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


def _message(conversation_id: str, raw: dict[str, Any], where: str) -> InboundMessage:
    text = str(raw.get("text") or raw.get("content") or "").strip()
    if not text:
        raise RecordError(f"{where}: empty text")
    role = parse_role(raw.get("role"))
    sent_at = parse_timestamp(
        raw.get("sent_at") or raw.get("timestamp") or raw.get("created_at") or ""
    )
    external_id = str(raw.get("id") or raw.get("message_id") or "") or content_id(
        conversation_id, role, text, sent_at.isoformat()
    )
    return InboundMessage(
        role=role,
        text=text,
        sent_at=sent_at,
        external_id=external_id,
        internal_note=str(raw.get("visibility", "public")).lower() == "internal",
    )


def _requester(data: dict[str, Any], messages: list[Any]) -> Requester | None:
    found = data.get("customer")
    customer: dict[str, Any] = found if isinstance(found, dict) else {}
    person_id = customer.get("id") or customer.get("external_id") or data.get("customer_id")
    email = customer.get("email") or data.get("customer_email")
    name = customer.get("name")
    if not person_id and not email:
        for message in messages:
            author = message.get("author") if isinstance(message, dict) else None
            if isinstance(author, dict) and str(message.get("role")).lower() == "customer":
                person_id, email = author.get("source_id"), author.get("email")
                name = author.get("display_name")
                break
    if not person_id and not email:
        return None
    return Requester(
        str(person_id) if person_id else None,
        str(email) if email else None,
        str(name) if name else None,
    )


def read_jsonl(
    path: Path, source: str, errors: list[tuple[int, str]]
) -> Iterator[InboundConversation]:
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                if not isinstance(data, dict):
                    raise RecordError("line is not a JSON object")
                external_id = str(data.get("external_id") or data.get("conversation_id") or "")
                if not external_id:
                    raise RecordError("missing external_id")
                messages = data.get("messages")
                if not isinstance(messages, list) or not messages:
                    raise RecordError("missing messages")
                yield InboundConversation(
                    source=source,
                    external_id=external_id,
                    channel=str(data.get("channel") or "chat"),
                    subject=str(data.get("subject") or ""),
                    messages=[
                        _message(external_id, m, f"message {i + 1}") for i, m in enumerate(messages)
                    ],
                    requester=_requester(data, messages),
                )
            except (json.JSONDecodeError, RecordError, AttributeError) as exc:
                errors.append((number, str(exc)))


def read_csv(
    path: Path, source: str, errors: list[tuple[int, str]]
) -> Iterator[InboundConversation]:
    """Rows may come in any order; they are grouped by conversation before ingestion."""
    csv.field_size_limit(sys.maxsize)
    conversations: dict[str, InboundConversation] = {}
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in CSV_REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            errors.append((1, f"header lacks required columns {missing}"))
            return
        for row in reader:
            number = reader.line_num  # the last physical line of a multi-line row
            try:
                conversation_id = (row.get("conversation_id") or "").strip()
                if not conversation_id:
                    raise RecordError("empty conversation_id")
                message = _message(conversation_id, row, f"row {number}")
            except RecordError as exc:
                errors.append((number, str(exc)))
                continue
            conversation = conversations.setdefault(
                conversation_id,
                InboundConversation(
                    source=source,
                    external_id=conversation_id,
                    channel=(row.get("channel") or "chat").strip(),
                    subject=(row.get("subject") or "").strip(),
                ),
            )
            conversation.messages.append(message)
            if conversation.requester is None:
                conversation.requester = _requester(row, [])
    yield from conversations.values()


def import_file(
    *,
    db: DbEngine,
    tenant_id: int,
    path: Path,
    source: str = "import",
    on_progress: Callable[[int], None] | None = None,
) -> ImportReport:
    report = ImportReport()
    reader = read_csv if path.suffix.lower() == ".csv" else read_jsonl
    batch: list[InboundConversation] = []

    def flush() -> None:
        with session_scope(db) as session:
            for record in batch:
                result = ingest_conversation(session=session, tenant_id=tenant_id, record=record)
                report.conversations_created += result.conversation_created
                report.messages_created += result.messages_created
                report.messages_skipped += result.messages_skipped
        if on_progress:
            on_progress(len(batch))
        batch.clear()

    for record in reader(path, source, report.errors):
        # Duplicate message rows inside one conversation collapse on their id.
        unique = {m.external_id: m for m in record.messages}
        report.messages_skipped += len(record.messages) - len(unique)
        record.messages = list(unique.values())
        report.conversations_seen += 1
        batch.append(record)
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()
    return report
