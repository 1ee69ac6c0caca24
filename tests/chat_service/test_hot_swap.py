"""The hot-swap protocol on the embedded engine (the vLLM runs are in test_vllm.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from chat_service.adapter_leases import AdapterLeases
from chat_service.hot_swap import AdapterManager
from chat_service.server import BackgroundServer
from core.db import session_scope
from core.migrate import open_database
from core.models import AdapterVersion, Message, Role
from engines.embedded import EmbeddedEngine
from supportloop.cli import app as cli
from tests.adapters import make_corrupt_adapter, make_foreign_adapter, make_random_adapter
from tests.chat_service.swap_helpers import admin, ask, publish, unique
from tests.conftest import ADMIN_TOKEN, PhraseAdapter, free_port, make_settings, running_server
from tests.factories import make_tenant

pytestmark = pytest.mark.anyio


@pytest.fixture
def live(tmp_path: Path, engine: EmbeddedEngine) -> Iterator[BackgroundServer]:
    before = set(asyncio.run(engine.list_adapters()))
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'swap.db'}",
        port=free_port(),
        max_new_tokens=16,
        adapter_sync_interval_s=0.2,
    )
    with running_server(settings, engine) as server:
        make_tenant(server.app.state.services.db, "acme")
        yield server
    for name in set(asyncio.run(engine.list_adapters())) - before:
        asyncio.run(engine.unload_adapter(name))


async def test_publish_switches_replies_and_rollback_returns(
    live: BackgroundServer, phrase_adapters: dict[str, PhraseAdapter]
) -> None:
    v1, v2 = unique("acme-v1"), unique("acme-v2")
    assert (await publish(live, v1, phrase_adapters["v1"].path)).status_code == 201
    assert (await ask(live)).startswith(phrase_adapters["v1"].phrase)

    published = await publish(live, v2, phrase_adapters["v2"].path)
    assert published.status_code == 201 and published.json()["status"] == "active"
    assert (await ask(live)).startswith(phrase_adapters["v2"].phrase)
    listing = (await admin(live, "GET", "")).json()
    assert (listing["active"], listing["previous"]) == (v2, v1)
    assert set(listing["loaded"]) == {v1, v2}  # the previous version stays loaded

    rolled = await admin(live, "POST", "/rollback")
    assert rolled.status_code == 200 and rolled.json()["name"] == v1
    assert (await ask(live)).startswith(phrase_adapters["v1"].phrase)
    listing = (await admin(live, "GET", "")).json()
    assert (listing["active"], listing["previous"]) == (v1, v2)
    statuses = {item["name"]: item["status"] for item in listing["items"]}
    assert statuses == {v1: "active", v2: "retired"}


async def test_versions_older_than_the_previous_one_are_unloaded(
    live: BackgroundServer,
    phrase_adapters: dict[str, PhraseAdapter],
    adapter_dirs: tuple[Path, Path],
) -> None:
    v1, v2, v3 = unique("acme-v1"), unique("acme-v2"), unique("acme-v3")
    for name, path in (
        (v1, phrase_adapters["v1"].path),
        (v2, phrase_adapters["v2"].path),
        (v3, adapter_dirs[0]),
    ):
        assert (await publish(live, name, path)).status_code == 201
    for _ in range(300):  # the sync loop unloads within a few intervals, slower on a busy CI
        if set((await admin(live, "GET", "")).json()["loaded"]) == {v2, v3}:
            break
        await asyncio.sleep(0.1)
    assert set((await admin(live, "GET", "")).json()["loaded"]) == {v2, v3}


BAD_CANDIDATES = {
    "corrupt file": (
        lambda good, tmp: make_corrupt_adapter(good, tmp / "corrupt"),
        "not a readable safetensors",
    ),
    "another base model": (
        lambda good, tmp: make_foreign_adapter(tmp / "foreign"),
        "another base model",
    ),
    "rank above the maximum": (
        lambda good, tmp: make_random_adapter(
            Path("var/models/smollm2-135m-instruct"), tmp / "r32", seed=3, rank=32
        ),
        "above the server's maximum of 16",
    ),
    "missing directory": (lambda good, tmp: tmp / "nowhere", "does not exist"),
}


@pytest.mark.parametrize("case", sorted(BAD_CANDIDATES))
async def test_a_bad_candidate_is_rejected_and_the_active_version_keeps_answering(
    case: str, live: BackgroundServer, phrase_adapters: dict[str, PhraseAdapter], tmp_path: Path
) -> None:
    make, reason = BAD_CANDIDATES[case]
    v1, bad = unique("acme-v1"), unique("acme-bad")
    assert (await publish(live, v1, phrase_adapters["v1"].path)).status_code == 201
    bad_path = make(phrase_adapters["v1"].path, tmp_path)

    response = await publish(live, bad, bad_path)
    if case == "missing directory":  # refused before it could even be registered
        assert response.status_code == 409 and reason in response.json()["detail"]
    else:
        assert response.status_code == 409 and reason in response.json()["detail"]
        listing = (await admin(live, "GET", "")).json()
        rejected = next(item for item in listing["items"] if item["name"] == bad)
        assert rejected["status"] == "rejected" and reason in rejected["status_reason"]
        assert bad not in listing["loaded"]
        again = await admin(live, "POST", f"/{bad}/activate")
        assert again.status_code == 409
    listing = (await admin(live, "GET", "")).json()
    assert listing["active"] == v1
    assert (await ask(live)).startswith(phrase_adapters["v1"].phrase)


async def test_files_changed_after_publishing_are_refused(
    live: BackgroundServer, phrase_adapters: dict[str, PhraseAdapter], tmp_path: Path
) -> None:
    import shutil

    v1, v2 = unique("acme-v1"), unique("acme-v2")
    copy = tmp_path / "v2"
    shutil.copytree(phrase_adapters["v2"].path, copy)
    assert (await publish(live, v1, phrase_adapters["v1"].path)).status_code == 201
    assert (await publish(live, v2, copy)).status_code == 201
    assert (await admin(live, "POST", "/rollback")).status_code == 200
    (copy / "adapter_config.json").write_text((copy / "adapter_config.json").read_text() + " ")
    response = await admin(live, "POST", f"/{v2}/activate")
    assert response.status_code == 409 and "does not match the sha256" in response.json()["detail"]
    assert (await admin(live, "GET", "")).json()["active"] == v1


async def test_a_reply_in_flight_finishes_on_the_adapter_it_began_with(
    live: BackgroundServer, phrase_adapters: dict[str, PhraseAdapter]
) -> None:
    v1, v2 = unique("acme-v1"), unique("acme-v2")
    assert (await publish(live, v1, phrase_adapters["v1"].path)).status_code == 201
    reply = asyncio.create_task(ask(live))
    while not live.app.state.services.leases.in_use(v1):  # the reply is streaming on v1
        await asyncio.sleep(0.01)
    assert (await publish(live, v2, phrase_adapters["v2"].path)).status_code == 201
    assert (await reply).startswith(phrase_adapters["v1"].phrase)
    with session_scope(live.app.state.services.db) as session:
        bots = session.exec(select(Message).where(Message.role == Role.BOT)).all()
        names = [session.get(AdapterVersion, m.adapter_version_id).name for m in bots]
    assert names == [v1]
    assert (await ask(live)).startswith(phrase_adapters["v2"].phrase)


async def test_the_service_reloads_an_active_adapter_the_engine_lost(
    live: BackgroundServer, engine: EmbeddedEngine, phrase_adapters: dict[str, PhraseAdapter]
) -> None:
    v1 = unique("acme-v1")
    assert (await publish(live, v1, phrase_adapters["v1"].path)).status_code == 201
    await engine.unload_adapter(v1)  # what a restarted engine looks like
    for _ in range(100):
        if v1 in await engine.list_adapters():
            break
        await asyncio.sleep(0.05)
    assert v1 in await engine.list_adapters()
    assert (await ask(live)).startswith(phrase_adapters["v1"].phrase)


def test_adapters_cli_acts_on_the_running_service(
    live: BackgroundServer, phrase_adapters: dict[str, PhraseAdapter]
) -> None:
    from core.settings import get_settings

    v1, v2 = unique("acme-v1"), unique("acme-v2")
    runner = CliRunner()
    env = {"SUPPORTLOOP_ADMIN_TOKEN": ADMIN_TOKEN}
    base = ["--tenant", "acme", "--url", live.http_url]
    get_settings.cache_clear()
    try:
        for name, version in ((v1, "v1"), (v2, "v2")):
            result = runner.invoke(
                cli,
                ["adapters", "publish", name, str(phrase_adapters[version].path), *base],
                env=env,
            )
            assert result.exit_code == 0, result.output
        listed = runner.invoke(cli, ["adapters", "list", *base], env=env)
        assert listed.exit_code == 0 and "(active)" in listed.output and v1[:8] in listed.output
        rolled = runner.invoke(cli, ["adapters", "rollback", *base], env=env)
        assert rolled.exit_code == 0 and v1 in rolled.output
        activated = runner.invoke(cli, ["adapters", "activate", v2, *base], env=env)
        assert activated.exit_code == 0 and v2 in activated.output
        unknown = runner.invoke(cli, ["adapters", "activate", "nope", *base], env=env)
        assert unknown.exit_code == 1 and "404" in unknown.output
    finally:
        get_settings.cache_clear()


class GatedEngine:
    """The shared embedded engine, with two points where the test decides when work goes on:
    the smoke test of a version being activated, and the sync loop's reload step. Each gate
    holds only while the test has it shut."""

    def __init__(self, engine: EmbeddedEngine) -> None:
        self._engine = engine
        self.smoke = Gate()
        self.sync = Gate()
        self.unloaded: list[str] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self._engine, name)

    async def stream_chat(self, *args: object, **kwargs: object):  # noqa: ANN201
        await self.smoke.pass_through()
        async for piece in self._engine.stream_chat(*args, **kwargs):
            yield piece

    async def ensure_adapter(self, name: str, path: Path) -> None:
        await self.sync.pass_through()
        await self._engine.ensure_adapter(name, path)

    async def unload_adapter(self, name: str) -> None:
        self.unloaded.append(name)
        await self._engine.unload_adapter(name)


class Gate:
    def __init__(self) -> None:
        self.reached, self.opened = asyncio.Event(), asyncio.Event()
        self.opened.set()

    def shut(self) -> None:
        self.reached.clear()
        self.opened.clear()

    async def pass_through(self) -> None:
        if not self.opened.is_set():
            self.reached.set()
            await self.opened.wait()


async def test_a_sync_that_read_the_registry_before_a_switch_keeps_the_new_version(
    tmp_path: Path, engine: EmbeddedEngine, phrase_adapters: dict[str, PhraseAdapter]
) -> None:
    """A sync that read "v1 is wanted" just before v2 became active must not unload v2 (the
    next sync loaded it again, but until then the tenant's replies came from the base model)."""
    db = open_database(f"sqlite:///{tmp_path / 'registry.db'}")
    make_tenant(db, "acme")
    settings = make_settings(tmp_path, "sqlite://", max_new_tokens=4)
    v1, v2 = unique("acme-v1"), unique("acme-v2")
    gated = GatedEngine(engine)
    manager = AdapterManager(db=db, engine=gated, leases=AdapterLeases(), settings=settings)  # type: ignore[arg-type]
    try:
        await manager.publish(tenant_slug="acme", name=v1, path=phrase_adapters["v1"].path)
        gated.smoke.shut()
        publishing = asyncio.create_task(
            manager.publish(tenant_slug="acme", name=v2, path=phrase_adapters["v2"].path)
        )
        await gated.smoke.reached.wait()  # v2 is loaded, not yet switched to
        gated.sync.shut()
        syncing = asyncio.create_task(manager.sync())
        await gated.sync.reached.wait()  # a sync has read the registry: v1 active
        gated.smoke.opened.set()
        await asyncio.wait([publishing], timeout=5)  # the switch goes as far as it can
        gated.sync.opened.set()
        await asyncio.gather(publishing, syncing)
        await manager.sync()

        assert gated.unloaded == []  # not even for a moment
        assert {v1, v2} <= set(await engine.list_adapters())
        assert {v1, v2} <= manager.loaded
    finally:
        gated.smoke.opened.set()
        gated.sync.opened.set()
        for name in (v1, v2):
            await engine.unload_adapter(name)
