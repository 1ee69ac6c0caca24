"""Training throughput and peak memory: our trainer against a plain transformers + peft loop.

Same base model, same LoRA (rank 16 on every projection), same examples (coffee-orders, reply
tokens only as targets), same batch size and number of optimizer steps, run one after the other
in this one invocation, each in its own child process so peak memory (max RSS on CPU, peak
allocated on CUDA) belongs to that trainer alone. Tokens/s counts real (non-padding) tokens.

The plain loop is what one writes first: batches in shuffled order, each padded to its longest
example. Ours sorts examples by length inside chunks of 16 batches, so padding (wasted compute)
is small; everything else is identical, so the ratio is what that choice buys.

    python -m benchmarks.bench_training [--conversations 96] [--steps 12] [--batch 8]
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COFFEE = (
    Path(__file__).resolve().parents[1].parent / "shared/datasets/coffee-orders/conversations.jsonl"
)


def examples(count: int, system_prompt: str) -> list[list[object]]:
    """The first ``count`` coffee-orders conversations, as the nightly loop would see them."""
    from eval.evaluate import read_conversations

    return read_conversations(COFFEE, system_prompt, count)  # type: ignore[return-value]


def peak_memory_mib(device: str) -> float:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_ours(args: argparse.Namespace, data: list[list[object]], device: str) -> dict[str, float]:
    from core.settings import Settings, TrainingConfig
    from finetune_loop.trainer import train_lora

    settings = Settings()
    batches = args.steps
    epochs = batches * args.batch / len(data)
    with tempfile.TemporaryDirectory() as tmp:
        result = train_lora(
            model_dir=settings.resolved_model_dir,
            examples=data,  # type: ignore[arg-type]
            out_dir=Path(tmp) / "out",
            work_dir=Path(tmp) / "work",
            config=TrainingConfig(
                lora_rank=16,
                lora_alpha=32,
                epochs=epochs,
                batch_size=args.batch,
                max_seq_len=1024,
                checkpoint_every=10**6,
            ),
            fingerprint="bench",
            device=device,
        )
    return {"tokens": result.tokens, "seconds": result.seconds, "steps": result.steps}


def run_plain(args: argparse.Namespace, data: list[list[object]], device: str) -> dict[str, float]:
    import torch
    from peft import LoraConfig, get_peft_model

    from core.chat_format import IGNORE, encode
    from core.settings import Settings
    from engines.base_model import load_base
    from finetune_loop.trainer import TARGET_MODULES, collate

    started = time.perf_counter()
    torch.manual_seed(0)
    model, tokenizer = load_base(Settings().resolved_model_dir, device)
    model = get_peft_model(
        model,
        LoraConfig(
            r=16,
            lora_alpha=32,
            lora_dropout=0.05,
            target_modules=TARGET_MODULES,
            task_type="CAUSAL_LM",
        ),
    )
    encoded = [encode(tokenizer, turns, 1024) for turns in data]  # type: ignore[arg-type]
    order = list(range(len(encoded)))
    random.Random(0).shuffle(order)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    model.train()
    tokens = 0
    cycle = itertools.cycle(order)
    for _ in range(args.steps):
        batch = collate(
            [encoded[next(cycle)] for _ in range(args.batch)], tokenizer.pad_token_id or 0, device
        )
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += int(batch["attention_mask"].sum())
    assert IGNORE == -100
    return {"tokens": tokens, "seconds": time.perf_counter() - started, "steps": args.steps}


def child(args: argparse.Namespace) -> None:
    from core.settings import Settings
    from engines.base_model import pick_device

    device = pick_device("auto")
    data = examples(args.conversations, Settings().system_prompt)
    result = (run_ours if args.child == "ours" else run_plain)(args, data, device)
    result["peak_mib"] = peak_memory_mib(device)
    result["device"] = device  # type: ignore[assignment]
    print(json.dumps(result))  # noqa: T201


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=96)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--child", choices=["ours", "plain"])
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    results = {}
    for name in ("plain", "ours"):
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.bench_training",
                "--child",
                name,
                "--conversations",
                str(args.conversations),
                "--steps",
                str(args.steps),
                "--batch",
                str(args.batch),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
    for name, r in results.items():
        print(
            f"{name:5s} {r['device']}: {r['tokens'] / r['seconds']:.0f} tokens/s "
            f"({r['tokens']} tokens, {r['steps']} steps, {r['seconds']:.1f} s incl. load), "
            f"peak {r['peak_mib']:.0f} MiB"
        )
    ours, plain = results["ours"], results["plain"]
    speed = (ours["tokens"] / ours["seconds"]) / (plain["tokens"] / plain["seconds"])
    print(
        f"ours/plain: {speed:.2f}x tokens/s, {ours['peak_mib'] / plain['peak_mib']:.2f}x peak memory"
    )


if __name__ == "__main__":
    main()
