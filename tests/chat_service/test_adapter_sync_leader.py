"""Several workers keep one engine in line with the registry without undoing each other: one
leader (a Redis key it renews) publishes approved versions and, on an engine the workers share
(vLLM servers), is the only one to unload; everyone loads what is wanted."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
import redis.asyncio as redis
from sqlalchemy.engine import Engine as DbEngine

from chat_service.adapter_leases import AdapterLeases
from chat_service.hot_swap import PUBLISHER, AdapterManager
from chat_service.leadership import RedisLeadership
from core.crud.adapters import register_adapter, switch_active
from core.db import session_scope
from core.migrate import open_database
from core.models import AdapterStatus, BotMode, Role
from engines.adapter_files import adapter_digest
from engines.embedded import EmbeddedEngine
from tests.chat_service.swap_helpers import unique
from tests.conftest import PhraseAdapter, make_settings
from tests.factories import make_tenant
from tests.finetune_loop.factories import add_conversation
from tests.test_prompt_format import responder_for

pytestmark = pytest.mark.anyio


async def test_one_worker_leads_until_it_stops_renewing(redis_client: redis.Redis) -> None:
    prefix = f"supportloop-test:{uuid.uuid4().hex}"
    worker_a = RedisLeadership(redis_client, prefix=prefix, ttl_s=0.5)
    worker_b = RedisLeadership(redis_client, prefix=prefix, ttl_s=0.5)
    assert await worker_a.leads(PUBLISHER)
    for _ in range(4):  # A keeps asking (renewing) past several expiries: the lead stays
        await asyncio.sleep(0.2)
        assert await worker_a.leads(PUBLISHER) and not await worker_b.leads(PUBLISHER)
    assert await worker_b.leads("another-role")  # roles are led separately
    await asyncio.sleep(0.7)  # A died: it stopped asking
    assert await worker_b.leads(PUBLISHER)
    assert not await worker_a.leads(PUBLISHER)


class SharedEngine:
    """The real engine, used by two workers' managers at once, as vLLM servers are."""

    shared = True

    def __init__(self, engine: EmbeddedEngine) -> None:
        self._engine = engine

    def __getattr__(self, name: str) -> object:
        return getattr(self._engine, name)


async def test_only_the_leader_publishes_approved_versions_and_unloads_from_a_shared_engine(
    tmp_path: Path,
    engine: EmbeddedEngine,
    phrase_adapters: dict[str, PhraseAdapter],
    adapter_dirs: tuple[Path, Path],
    redis_client: redis.Redis,
) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'registry.db'}")
    tenant, _ = make_tenant(db, "acme")
    settings = make_settings(tmp_path, "sqlite://", max_new_tokens=4)
    prefix = f"supportloop-test:{uuid.uuid4().hex}"
    shared = SharedEngine(engine)
    leader, follower = (
        AdapterManager(
            db=db,
            engine=shared,  # type: ignore[arg-type]
            leases=AdapterLeases(),
            settings=settings,
            leadership=RedisLeadership(redis_client, prefix=prefix, ttl_s=30),
        )
        for _ in range(2)
    )
    v1, v2, v3, v4 = (unique(f"acme-v{n}") for n in range(1, 5))
    try:
        await leader.sync()  # the first to ask leads
        for name, path in (
            (v1, phrase_adapters["v1"].path),
            (v2, phrase_adapters["v2"].path),
            (v3, adapter_dirs[0]),
        ):
            await follower.publish(tenant_slug="acme", name=name, path=path)
        await follower.sync()
        assert v1 in await engine.list_adapters()  # retired, but not the follower's to unload
        await leader.sync()
        assert {v2, v3} <= set(await engine.list_adapters())
        assert v1 not in await engine.list_adapters()

        with session_scope(db) as session:
            assert tenant.id is not None
            register_adapter(
                session=session,
                tenant_id=tenant.id,
                name=v4,
                path=str(adapter_dirs[1].resolve()),
                base_model="",
                sha256=adapter_digest(adapter_dirs[1]),
                status=AdapterStatus.APPROVED,
            )
        await follower.sync()
        assert v4 not in await engine.list_adapters()  # the nightly's version waits for the leader
        await leader.sync()
        assert v4 in await engine.list_adapters()
        await follower.sync()  # and the follower now knows it as loaded, to answer with it
        assert v4 in follower.loaded
    finally:
        for name in set(await engine.list_adapters()) & {v1, v2, v3, v4}:
            await engine.unload_adapter(name)


def test_a_worker_that_has_not_synced_yet_answers_with_the_version_the_new_one_replaced(
    db: DbEngine, engine: EmbeddedEngine, tmp_path: Path, db_url: str
) -> None:
    """Another worker switched the pointer a moment ago; this one's next sync has not seen the
    new version loaded yet. Its customers keep the version they had, not the base model."""
    tenant, _ = make_tenant(db, "acme", bot_mode=BotMode.AUTO)
    assert tenant.id is not None
    with session_scope(db) as session:
        for name in ("acme-v1", "acme-v2"):
            version = register_adapter(
                session=session,
                tenant_id=tenant.id,
                name=name,
                path=str(tmp_path / name),
                base_model="",
                sha256="0" * 64,
            )
            assert version.id is not None
            switch_active(session=session, tenant_id=tenant.id, adapter_id=version.id)
    conversation = add_conversation(
        db, tenant.id, [(Role.CUSTOMER, "Where is my order?")], resolved=False
    )
    responder = responder_for(db, engine, make_settings(tmp_path, db_url))

    def answering_with(loaded: set[str]) -> str | None:
        plan = responder.plan_reply(tenant.id, conversation, loaded)  # type: ignore[arg-type]
        assert plan is not None
        return plan.adapter_name

    assert answering_with({"acme-v1", "acme-v2"}) == "acme-v2"
    assert answering_with({"acme-v1"}) == "acme-v1"  # not synced yet: the replaced version
    assert answering_with(set()) is None  # nothing of this tenant's loaded: the base model
