"""Grounding: indexing speed, retrieval latency as the index grows, and time to first token
with retrieval vs without, side by side in one run.

- Indexing: the help-center dataset's 39 articles through `sync_documents` (chunking, MiniLM
  embeddings of chunks and of their sentences and rows), chunks per second.
- Retrieval latency: `ground()` for the 40 dev questions against indexes of 1k, 10k and 100k
  chunks. The real help-center chunks are repeated with their words shuffled between copies
  (so BM25 sees a growing vocabulary of real words), with random unit vectors for the copies'
  embeddings: the cost is the search, not what the chunks say.
- TTFT: the embedded engine answering each dev question with the grounded prompt (retrieval
  included in the time) and with the plain system prompt, alternating.

Run with `make bench` (or `python -m benchmarks.bench_knowledge`); raw data goes to
var/bench/knowledge.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from pathlib import Path

import numpy as np

from chat_service.grounded import plan_prompt
from core.chat_format import conversation_turns
from core.migrate import open_database
from core.settings import KnowledgeConfig, Settings
from engines import SamplingParams
from engines.embedded import EmbeddedEngine
from knowledge import KnowledgeBase, default_embeddings, load_index, read_tree, sync_documents
from knowledge.grounding import ground
from knowledge.index import IndexedChunk, TenantIndex
from tests.factories import make_tenant

HELP_CENTER = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "help-center"


class Said:
    def __init__(self, text: str) -> None:
        self.role, self.text, self.internal_note = "customer", text, False


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def grown_index(base: TenantIndex, size: int, rng: random.Random) -> TenantIndex:
    chunks, vectors, units = list(base.chunks), [base.vectors], list(base.unit_vectors)
    headings = [base.heading_vectors]
    np_rng = np.random.default_rng(0)
    while len(chunks) < size:
        source = base.chunks[rng.randrange(len(base.chunks))]
        words = source.search_text.split()
        rng.shuffle(words)
        copy = IndexedChunk(
            doc_id=f"{source.doc_id}-copy{len(chunks)}",
            title=source.title,
            url=None,
            heading_path=source.heading_path,
            text=source.text,
            units=source.units,
            search_text=" ".join(words),
        )
        chunks.append(copy)
        vector = np_rng.normal(size=(1, base.vectors.shape[1])).astype(np.float32)
        vectors.append(vector / np.linalg.norm(vector))
        heading = np_rng.normal(size=(1, base.vectors.shape[1])).astype(np.float32)
        headings.append(heading / np.linalg.norm(heading))
        unit = np_rng.normal(size=(len(source.units), base.vectors.shape[1])).astype(np.float32)
        units.append(unit / np.linalg.norm(unit, axis=1, keepdims=True))
    return TenantIndex(chunks, np.concatenate(vectors), units, np.concatenate(headings))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000, 10_000, 100_000])
    parser.add_argument("--ttft-rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("var/bench/knowledge.json"))
    args = parser.parse_args()
    work = Path("var/bench/knowledge")
    work.mkdir(parents=True, exist_ok=True)
    db_path = work / "bench.db"
    db_path.unlink(missing_ok=True)
    db = open_database(f"sqlite:///{db_path}")
    tenant, _ = make_tenant(db, "harbor")
    assert tenant.id is not None
    embeddings = default_embeddings()
    embeddings.embed(["warm-up"])

    started = time.perf_counter()
    report = sync_documents(
        db, tenant_id=tenant.id, source="bench", documents=read_tree(HELP_CENTER / "articles"),
        embeddings=embeddings,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    results: dict[str, object] = {
        "indexing": {"chunks": report.chunks, "seconds": round(seconds, 2),
                     "chunks_per_s": round(report.chunks / seconds, 1)},
    }  # fmt: skip
    print(f"indexing: {report.chunks} chunks in {seconds:.1f} s = {report.chunks / seconds:.1f}/s")

    questions = [
        json.loads(line)["question"]
        for line in (HELP_CENTER / "questions-dev.jsonl").read_text().splitlines()
    ]
    base = load_index(db, tenant.id)
    config = KnowledgeConfig()
    latency: dict[str, dict[str, float]] = {}
    rng = random.Random(0)
    for size in args.sizes:
        index = grown_index(base, size, rng)
        times = []
        for question in questions:
            t0 = time.perf_counter()
            ground(index, embeddings, [question], min_support=config.min_support)
            times.append((time.perf_counter() - t0) * 1000)
        latency[str(size)] = {"p50_ms": round(percentile(times, 50), 1),
                              "p95_ms": round(percentile(times, 95), 1)}  # fmt: skip
        print(f"retrieval at {size} chunks: p50 {latency[str(size)]['p50_ms']} ms, "
              f"p95 {latency[str(size)]['p95_ms']} ms")  # fmt: skip
    results["retrieval_latency"] = latency

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    engine = EmbeddedEngine(settings.resolved_model_dir, context_tokens=settings.context_tokens)
    asyncio.run(engine.start())
    kb = KnowledgeBase(db, config, embeddings)
    params = SamplingParams(max_tokens=1, temperature=0.0)

    async def first_token(grounded: bool, question: str) -> float:
        t0 = time.perf_counter()
        if grounded:
            turns = plan_prompt(kb, settings.system_prompt, tenant.id, [Said(question)]).prompt  # type: ignore[arg-type]
        else:
            turns = conversation_turns(settings.system_prompt, [Said(question)])[0]
        async for _ in engine.stream_chat(turns, params=params):
            break
        return (time.perf_counter() - t0) * 1000

    ttft: dict[str, list[float]] = {"with retrieval": [], "without": []}
    for _ in range(args.ttft_rounds):
        for question in questions:
            ttft["with retrieval"].append(asyncio.run(first_token(True, question)))
            ttft["without"].append(asyncio.run(first_token(False, question)))
    asyncio.run(engine.close())
    summary = {k: {"p50_ms": round(statistics.median(v), 1), "p95_ms": round(percentile(v, 95), 1)}
               for k, v in ttft.items()}  # fmt: skip
    ratio = summary["with retrieval"]["p50_ms"] / summary["without"]["p50_ms"]
    results["ttft"] = {**summary, "p50_ratio": round(ratio, 2)}
    print(f"TTFT p50 with retrieval {summary['with retrieval']['p50_ms']} ms, "
          f"without {summary['without']['p50_ms']} ms (ratio {ratio:.2f})")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
