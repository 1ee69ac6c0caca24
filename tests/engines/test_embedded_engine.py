"""The embedded engine on the real 135M model."""

from __future__ import annotations

import asyncio
import shutil
import threading
from pathlib import Path

import pytest

from core.chat_format import Turn
from engines import AdapterLoadError, AdapterNotFoundError, SamplingParams
from engines.embedded import EmbeddedEngine

pytestmark = pytest.mark.anyio
GREEDY = SamplingParams(max_tokens=16, temperature=0.0)
QUESTION = [Turn("user", "Hello! Can I change my coffee order to a large latte?")]


async def collect(engine: EmbeddedEngine, adapter: str | None = None, **kw: object) -> list[str]:
    params = SamplingParams(**{"max_tokens": 16, "temperature": 0.0, **kw})  # type: ignore[arg-type]
    return [piece async for piece in engine.stream_chat(QUESTION, adapter=adapter, params=params)]


async def test_reply_streams_in_several_pieces(engine: EmbeddedEngine) -> None:
    pieces = await collect(engine)
    assert len(pieces) > 3
    assert "".join(pieces).strip()


async def test_greedy_decoding_is_deterministic(engine: EmbeddedEngine) -> None:
    assert "".join(await collect(engine)) == "".join(await collect(engine))


async def test_sampling_with_a_seed_is_reproducible(engine: EmbeddedEngine) -> None:
    first = await collect(engine, temperature=1.0, seed=7)
    again = await collect(engine, temperature=1.0, seed=7)
    assert first == again


@pytest.mark.slow  # long generations: `make test` only
async def test_concurrent_streams_interleave_rather_than_queue(engine: EmbeddedEngine) -> None:
    timeline: list[tuple[int, str]] = []

    async def run(n: int) -> None:
        params = SamplingParams(max_tokens=24, temperature=0.0)
        async for _ in engine.stream_chat(QUESTION, params=params):
            timeline.append((n, "piece"))
        timeline.append((n, "end"))

    await asyncio.gather(run(0), run(1))
    first_end = next(i for i, (_, kind) in enumerate(timeline) if kind == "end")
    # Both streams produced text before either finished.
    assert {n for n, kind in timeline[:first_end] if kind == "piece"} == {0, 1}


@pytest.mark.slow  # long generations: `make test` only
async def test_stop_strings_end_the_reply_before_the_stop(engine: EmbeddedEngine) -> None:
    full = "".join(await collect(engine, max_tokens=24))
    words = full.split()
    assert len(words) > 3
    stop = words[2]
    cut = "".join(await collect(engine, max_tokens=24, stop=(stop,)))
    assert stop not in cut
    assert full.startswith(cut)


@pytest.mark.slow
async def test_adapters_are_selected_per_request(
    engine: EmbeddedEngine, adapter_dirs: tuple[Path, Path]
) -> None:
    base = "".join(await collect(engine))
    await engine.load_adapter("t-a1", adapter_dirs[0])
    await engine.load_adapter("t-a2", adapter_dirs[1])
    try:
        assert {"t-a1", "t-a2"} <= set(await engine.list_adapters())
        replies = await asyncio.gather(
            collect(engine, "t-a1"),
            collect(engine),
            collect(engine, "t-a2"),
            collect(engine, "t-a1"),
        )
        a1, base_again, a2, a1_again = ("".join(r) for r in replies)
        assert base_again == base  # the base model is untouched by loaded adapters
        assert a1 == a1_again
        assert len({base, a1, a2}) == 3
    finally:
        await engine.unload_adapter("t-a1")
        await engine.unload_adapter("t-a2")
    assert "".join(await collect(engine)) == base  # unloading the last adapter restores the base


@pytest.mark.slow  # long generations: `make test` only
async def test_adapter_loads_while_another_stream_is_running(
    engine: EmbeddedEngine, adapter_dirs: tuple[Path, Path]
) -> None:
    started = asyncio.Event()
    pieces: list[str] = []

    async def long_stream() -> None:
        params = SamplingParams(max_tokens=48, temperature=0.0)
        async for piece in engine.stream_chat(QUESTION, params=params):
            pieces.append(piece)
            started.set()

    task = asyncio.create_task(long_stream())
    await started.wait()
    await engine.load_adapter("t-live", adapter_dirs[0])
    try:
        assert not task.done(), "the load waited for the whole stream instead of interleaving"
        assert "".join(await collect(engine, "t-live")).strip()
        await task
        assert len("".join(pieces)) > 20
    finally:
        await engine.unload_adapter("t-live")


async def test_unknown_adapter_is_refused(engine: EmbeddedEngine) -> None:
    with pytest.raises(AdapterNotFoundError, match="not loaded"):
        await collect(engine, "no-such-adapter")


async def test_adapter_names_are_never_reused(
    engine: EmbeddedEngine, adapter_dirs: tuple[Path, Path]
) -> None:
    await engine.load_adapter("t-once", adapter_dirs[0])
    try:
        with pytest.raises(AdapterLoadError, match="taken"):
            await engine.load_adapter("t-once", adapter_dirs[1])
    finally:
        await engine.unload_adapter("t-once")


async def test_pickled_or_incomplete_adapters_are_refused(
    engine: EmbeddedEngine, adapter_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    pickled = tmp_path / "pickled"
    shutil.copytree(adapter_dirs[0], pickled)
    (pickled / "adapter_model.bin").write_bytes(b"not really a pickle")
    with pytest.raises(AdapterLoadError, match="pickled"):
        await engine.load_adapter("t-pickled", pickled)
    with pytest.raises(AdapterLoadError, match="does not exist"):
        await engine.load_adapter("t-missing", tmp_path / "nowhere")
    assert "t-pickled" not in await engine.list_adapters()


async def test_a_consumer_that_stops_early_frees_the_engine(engine: EmbeddedEngine) -> None:
    params = SamplingParams(max_tokens=200, temperature=0.0)
    stream = engine.stream_chat(QUESTION, params=params)
    async for _ in stream:
        break
    await stream.aclose()
    # The scheduler drops the abandoned stream instead of decoding 200 tokens nobody reads.
    await collect(engine, max_tokens=2)
    for _ in range(100):
        if engine.active_streams == 0:
            break
        await asyncio.sleep(0.05)
    assert engine.active_streams == 0


def test_the_engine_survives_a_consumer_whose_event_loop_closed(engine: EmbeddedEngine) -> None:
    async def take_one_piece_and_leave() -> None:
        stream = engine.stream_chat(QUESTION, params=SamplingParams(max_tokens=64))
        await anext(stream)  # the loop closes with the stream still being decoded

    asyncio.run(take_one_piece_and_leave())
    assert asyncio.run(engine.ready())
    reply = asyncio.run(asyncio.wait_for(collect(engine, max_tokens=4), timeout=120))
    assert "".join(reply)
    assert asyncio.run(engine.ready())


async def test_a_load_abandoned_while_queued_is_skipped_and_the_engine_keeps_serving(
    engine: EmbeddedEngine, adapter_dirs: tuple[Path, Path]
) -> None:
    """A server shutting down cancels its adapter sync mid-load. That once ended the scheduler
    thread (set_result on a cancelled future), and every later reply waited forever."""
    gate = threading.Event()
    # Hold the scheduler thread so the load below is certainly still queued when cancelled.
    busy = asyncio.create_task(engine._call(lambda: gate.wait(timeout=60)))
    await asyncio.sleep(0.2)
    load = asyncio.create_task(engine.load_adapter("t-abandoned", adapter_dirs[0]))
    await asyncio.sleep(0.2)
    load.cancel()
    # Only once the task has finished cancelling has the cancel reached the queued call
    # (asyncio passes it on in a callback); then let the scheduler go on.
    with pytest.raises(asyncio.CancelledError):
        await load
    gate.set()
    assert await busy
    assert "".join(await asyncio.wait_for(collect(engine, max_tokens=4), timeout=30))
    assert await engine.ready()
    assert "t-abandoned" not in await engine.list_adapters()
