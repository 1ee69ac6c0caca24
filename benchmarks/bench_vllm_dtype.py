"""vLLM's CPU build in bfloat16 vs float32, on this machine, in one run.

Why it exists: `SUPPORTLOOP_DTYPE=auto` starts vLLM in bf16 only where the CPU computes bf16
natively (AVX512-BF16 or AMX) and in float32 elsewhere. This measures what that choice is worth
here: the same fixed-length greedy replies (the model may not stop early) at 1 and 8 concurrent
requests, straight to vLLM's OpenAI API, one server after the other. Run with `make bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.chat_load import MODEL_DIR, QUESTIONS, free_port
from core.settings import Settings
from engines.base_model import cpu_has_native_bf16
from engines.vllm_server import VLLMProcess

DTYPES = ("bfloat16", "float32")


async def tokens_per_s(url: str, model: str, concurrency: int, max_tokens: int) -> float:
    async def one(client: httpx.AsyncClient, i: int) -> int:
        response = await client.post(
            f"{url}/v1/chat/completions",
            json={
                "model": model,
                "messages": [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}],
                "max_tokens": max_tokens,
                "temperature": 0,
                "ignore_eos": True,
            },
        )
        response.raise_for_status()
        return int(response.json()["usage"]["completion_tokens"])

    async with httpx.AsyncClient(timeout=600) as client:
        await one(client, 0)  # warm-up: the first request pays one-time set-up
        start = time.perf_counter()
        tokens = sum(await asyncio.gather(*(one(client, i) for i in range(concurrency))))
        return tokens / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path("var/bench/vllm_dtype.json"))
    args = parser.parse_args()

    results: dict[str, dict[int, list[float]]] = {}
    for dtype in DTYPES:
        settings = Settings(_env_file=None, model_dir=MODEL_DIR, dtype=dtype)  # type: ignore[call-arg]
        server = VLLMProcess(settings, free_port(), Path(tempfile.mkdtemp()) / "vllm.log")
        server.start()
        try:
            results[dtype] = {
                n: [
                    asyncio.run(
                        tokens_per_s(server.url, settings.vllm_served_model, n, args.max_tokens)
                    )
                    for _ in range(args.rounds)
                ]
                for n in (1, 8)
            }
        finally:
            server.stop()

    print(f"CPU computes bf16 natively: {cpu_has_native_bf16()}")
    print("| chats | bfloat16 tokens/s | float32 tokens/s | float32/bfloat16 |")
    print("|---|---|---|---|")
    for n in (1, 8):
        bf16, fp32 = (max(results[d][n]) for d in DTYPES)
        print(f"| {n} | {bf16:.1f} | {fp32:.1f} | {fp32 / bf16:.2f}x |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"native_bf16": cpu_has_native_bf16(), **results}, indent=2))


if __name__ == "__main__":
    main()
