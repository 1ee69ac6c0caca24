"""Embedded engine called directly vs. through the WebSocket service, side by side.

Measures time to first token (TTFT) and tokens/s at 1 and 8 concurrent chats. The two paths
alternate within one run (direct, service, direct, service, …) so machine noise hits both
alike; the headline is the ratio, not the absolute numbers. Run with `make bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import asdict
from pathlib import Path

from benchmarks.chat_load import (
    Sample,
    engine_round,
    print_table,
    service_round,
    service_settings,
    summarise,
)
from chat_service.app import create_app
from chat_service.server import BackgroundServer
from engines.embedded import EmbeddedEngine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per setting")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path("var/bench/chat.json"))
    args = parser.parse_args()

    settings = service_settings(args.max_tokens)

    engine = EmbeddedEngine(settings.resolved_model_dir)
    asyncio.run(engine.start())
    tokenizer = engine._tokenizer  # noqa: SLF001  (count tokens identically on both paths)
    prompt = settings.system_prompt
    samples: list[Sample] = []
    with BackgroundServer(settings, create_app(settings, engine=engine)) as server:
        asyncio.run(
            engine_round("direct", engine, tokenizer, prompt, 1, args.max_tokens)
        )  # warm-up
        for concurrency in (1, 8):
            for _ in range(args.rounds):
                samples.append(
                    asyncio.run(
                        engine_round(
                            "direct", engine, tokenizer, prompt, concurrency, args.max_tokens
                        )
                    )
                )
                samples.append(
                    asyncio.run(
                        service_round("service", server.ws_url, "bench", tokenizer, concurrency)
                    )
                )
    asyncio.run(engine.close())

    paths = ["direct", "service"]
    rows = summarise(samples, paths)
    print_table(rows, paths)
    for row in rows:
        overhead = row["direct"]["tokens_per_s"] / row["service"]["tokens_per_s"] - 1
        ttft_ratio = row["service"]["ttft_p50_ms"] / row["direct"]["ttft_p50_ms"]
        row["throughput_overhead"] = overhead
        print(
            f"{row['concurrency']} chat(s): service throughput overhead {100 * overhead:+.1f}%, "
            f"TTFT p50 ratio service/direct {ttft_ratio:.2f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"rows": rows, "samples": [asdict(s) for s in samples]}, indent=2)
    )


if __name__ == "__main__":
    main()
