"""Group commit: shared transactions, each write still durable before its caller hears of it
(each test runs on SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import Session, select

from core.crud.conversations import (
    ConversationNotFoundError,
    append_message,
    list_messages,
    require_conversation,
)
from core.db import read_scope
from core.group_commit import GroupCommit, GroupCommitClosedError
from core.models import Message, Role
from tests.factories import make_conversation, make_tenant


def _append(tenant_id: int, conversation_id: int, client_id: str):  # noqa: ANN202
    def write(session: Session) -> int:
        conversation = require_conversation(
            session=session, tenant_id=tenant_id, conversation_id=conversation_id
        )
        message, _ = append_message(
            session=session,
            conversation=conversation,
            role=Role.CUSTOMER,
            text=f"question {client_id}",
            client_id=client_id,
        )
        return message.seq

    return write


def test_concurrent_writes_share_commits_and_all_are_stored(db: DbEngine) -> None:
    tenant, _ = make_tenant(db)
    conversation, _ = make_conversation(db, tenant)
    assert tenant.id is not None and conversation.id is not None
    writes = GroupCommit(db)
    with ThreadPoolExecutor(16) as pool:
        seqs = list(
            pool.map(lambda n: writes.run(_append(tenant.id, conversation.id, f"c{n}")), range(200))
        )
    writes.close()
    assert sorted(seqs) == list(range(1, 201))
    assert writes.writes == 200
    assert writes.batches < 200  # commits were shared under concurrency
    with read_scope(db) as session:
        stored = list_messages(session=session, conversation_id=conversation.id)
    assert [m.seq for m in stored] == list(range(1, 201))


def test_a_failing_write_fails_alone_and_the_rest_of_its_batch_commits(db: DbEngine) -> None:
    tenant, _ = make_tenant(db)
    conversation, _ = make_conversation(db, tenant)
    assert tenant.id is not None and conversation.id is not None
    writes = GroupCommit(db)
    release = threading.Event()
    # Hold the writer inside a first write so the next three queue up and share one batch.
    blocker = writes.submit(lambda session: release.wait(10))
    good_a = writes.submit(_append(tenant.id, conversation.id, "a"))
    bad = writes.submit(_append(tenant.id, 999_999, "b"))
    good_c = writes.submit(_append(tenant.id, conversation.id, "c"))
    release.set()
    blocker.result()
    assert (good_a.result(), good_c.result()) == (1, 2)
    with pytest.raises(ConversationNotFoundError):
        bad.result()
    writes.close()
    with read_scope(db) as session:
        texts = [m.text for m in list_messages(session=session, conversation_id=conversation.id)]
    assert texts == ["question a", "question c"]


def test_when_the_shared_commit_fails_no_caller_is_told_its_write_succeeded(db: DbEngine) -> None:
    tenant, _ = make_tenant(db)
    conversation, _ = make_conversation(db, tenant)
    assert tenant.id is not None and conversation.id is not None
    writes = GroupCommit(db)

    def refuse_commit(*_: Any) -> None:
        raise RuntimeError("disk full")

    sa.event.listen(db, "commit", refuse_commit)
    try:
        attempt = writes.submit(_append(tenant.id, conversation.id, "x"))
        with pytest.raises(RuntimeError, match="disk full"):
            attempt.result(timeout=10)
    finally:
        sa.event.remove(db, "commit", refuse_commit)
    # The writer goes on after a failed commit, and the caller's retry (same client id) lands.
    assert writes.run(_append(tenant.id, conversation.id, "x")) == 1
    writes.close()
    with read_scope(db) as session:
        assert len(session.exec(select(Message)).all()) == 1


def test_close_commits_what_is_queued_and_refuses_new_writes(db: DbEngine) -> None:
    tenant, _ = make_tenant(db)
    conversation, _ = make_conversation(db, tenant)
    assert tenant.id is not None and conversation.id is not None
    writes = GroupCommit(db)
    pending = [writes.submit(_append(tenant.id, conversation.id, f"q{n}")) for n in range(20)]
    writes.close()
    assert [f.result(timeout=0) for f in pending] == list(range(1, 21))
    with pytest.raises(GroupCommitClosedError):
        writes.submit(_append(tenant.id, conversation.id, "late"))


def test_coroutines_wait_for_the_commit_without_blocking_the_event_loop(db: DbEngine) -> None:
    tenant, _ = make_tenant(db)
    conversation, _ = make_conversation(db, tenant)
    assert tenant.id is not None and conversation.id is not None
    writes = GroupCommit(db)

    async def main() -> list[int]:
        return list(
            await asyncio.gather(
                *(writes.arun(_append(tenant.id, conversation.id, f"w{n}")) for n in range(50))
            )
        )

    assert sorted(asyncio.run(main())) == list(range(1, 51))
    writes.close()
