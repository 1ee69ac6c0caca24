"""LoRA training on the prepared base model: a small loop you can read top to bottom.

Why not transformers' Trainer: its checkpoints pickle the optimizer and its resume logic is
spread over many files. Here a checkpoint is three files written atomically - the adapter and
the optimizer state as safetensors, the step and config as JSON - and resuming is "load them,
skip the batches already seen". Batches are drawn in a seeded order, sorted by length inside
each chunk so padding stays small, and the loss covers only reply tokens (core/chat_format.py).

Under several processes (DDP, launched by finetune_loop/distributed.py: one per GPU, or gloo
processes on CPU) every process draws the same batches and takes its share of each; the loss
is weighted by reply tokens across all of them, so a step's gradient is the one a single
process would compute on the whole batch. Process 0 writes checkpoints and the adapter.
"""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.chat_format import IGNORE, Turn, encode
from core.durable_files import fsync_tree, replace_dir
from core.settings import TrainingConfig
from engines.base_model import load_base, pick_device

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint"
CONFIG_FILE = "training_config.json"
TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class TrainResult:
    steps: int
    resumed_from: int
    tokens: int
    final_loss: float
    seconds: float
    losses: list[float] = field(default_factory=list)  # one per step run here (the curve)
    processes: int = 1


def _world() -> tuple[int, int]:
    """(this process's rank, number of processes): (0, 1) unless DDP is set up."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _batches(
    encoded: list[tuple[list[int], list[int]]], batch_size: int, epoch: int, seed: int
) -> list[list[int]]:
    """Indices of each batch of one epoch: a seeded shuffle, then length-sorted chunks of 16
    batches (less padding), then the batches themselves shuffled."""
    rng = random.Random(seed * 1000 + epoch)
    order = list(range(len(encoded)))
    rng.shuffle(order)
    chunk = batch_size * 16
    batches = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: len(encoded[i][0]))
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(
    items: Sequence[tuple[list[int], list[int]]], pad_id: int, device: str
) -> dict[str, Any]:
    import torch

    width = max(len(ids) for ids, _ in items)
    input_ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
    attention = torch.zeros((len(items), width), dtype=torch.long)
    for row, (ids, labs) in enumerate(items):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(labs)] = torch.tensor(labs)
        attention[row, : len(ids)] = 1
    return {
        "input_ids": input_ids.to(device),
        "labels": labels.to(device),
        "attention_mask": attention.to(device),
    }


def _save_checkpoint(
    work_dir: Path, model: Any, optimizer: Any, step: int, meta: dict[str, Any]
) -> None:
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    staging = work_dir / f".{CHECKPOINT}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    save_file(
        {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(model).items()},
        staging / "adapter.safetensors",
    )
    state = optimizer.state_dict()
    tensors = {
        f"{index}.{key}": value.detach().cpu().contiguous()
        for index, slot in state["state"].items()
        for key, value in slot.items()
    }
    save_file(tensors, staging / "optimizer.safetensors")
    (staging / "state.json").write_text(
        json.dumps({**meta, "step": step, "param_groups": state["param_groups"]})
    )
    fsync_tree(staging)
    replace_dir(staging, work_dir / CHECKPOINT)


def _load_checkpoint(work_dir: Path, model: Any, optimizer: Any, meta: dict[str, Any]) -> int:
    """The step to continue from (0 when there is no checkpoint of this very job)."""
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    final = work_dir / CHECKPOINT
    if not (final / "state.json").exists():
        return 0
    saved = json.loads((final / "state.json").read_text())
    if {k: saved.get(k) for k in meta} != meta:
        log.warning("checkpoint in %s is for another job; starting over", work_dir)
        return 0
    set_peft_model_state_dict(model, load_file(final / "adapter.safetensors"))
    flat = load_file(final / "optimizer.safetensors")
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, tensor in flat.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = tensor
    optimizer.load_state_dict({"state": state, "param_groups": saved["param_groups"]})
    return int(saved["step"])


def _lora_model(model_dir: Path, device: str, config: TrainingConfig) -> tuple[Any, Any]:
    from peft import LoraConfig, get_peft_model

    model, tokenizer = load_base(model_dir, device)
    lora = LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.dropout,
        target_modules=TARGET_MODULES,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora), tokenizer


def _lr_factor(total: int, warmup_fraction: float) -> Callable[[int], float]:
    """Linear warm-up, then linear decay to zero at the last step."""
    warmup = max(1, int(total * warmup_fraction))
    return lambda step: (
        min(1.0, (step + 1) / warmup) * max(0.0, (total - step) / max(1, total - warmup))
    )


def train_lora(
    *,
    model_dir: Path,
    examples: Sequence[Sequence[Turn]],
    out_dir: Path,
    work_dir: Path,
    config: TrainingConfig,
    fingerprint: str,
    device: str = "auto",
    progress: Callable[[int, int, float], None] | None = None,
) -> TrainResult:
    """Train, checkpointing into `work_dir` (resumed if it holds this job's checkpoint), and
    write the adapter (safetensors + adapter_config.json + the training config) to `out_dir`."""
    import time

    import torch

    started = time.perf_counter()
    torch.manual_seed(config.seed)
    device = pick_device(device)
    model, tokenizer = _lora_model(model_dir, device, config)
    encoded = [encode(tokenizer, turns, config.max_seq_len) for turns in examples]
    encoded = [e for e in encoded if any(label != IGNORE for label in e[1])]
    if not encoded:
        raise ValueError("no example has a reply to learn from")
    total = max(1, math.ceil(math.ceil(len(encoded) / config.batch_size) * config.epochs))
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=config.learning_rate
    )
    meta = {"fingerprint": fingerprint, "config": config.model_dump(), "total": total}
    work_dir.mkdir(parents=True, exist_ok=True)
    resumed = _load_checkpoint(work_dir, model, optimizer, meta)
    factor = _lr_factor(total, config.warmup_fraction)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: factor(s + resumed))
    if resumed:
        log.info("resuming training at step %d of %d (%s)", resumed, total, work_dir)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    plan = [
        batch
        for epoch in range(math.ceil(config.epochs))
        for batch in _batches(encoded, config.batch_size, epoch, config.seed)
    ][:total]
    rank, world = _world()
    forward = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        forward = DistributedDataParallel(model)
    model.train()
    loss_value, tokens, losses = float("nan"), 0, []
    for step in range(resumed, total):
        mine = plan[step][rank::world]
        batch = collate([encoded[i] for i in mine or plan[step][:1]], pad_id, device)
        # Sum of token losses here, over the reply tokens of the whole batch: DDP averages the
        # gradients of `world` processes, so each contributes sum * world / all tokens.
        replies = float((batch["labels"][:, 1:] != IGNORE).sum()) if mine else 0.0
        seen = float(batch["attention_mask"].sum()) if mine else 0.0
        local_sum = forward(**batch).loss * replies
        totals = torch.tensor([float(local_sum.detach()), replies, seen])
        if world > 1:
            import torch.distributed as dist

            dist.all_reduce(totals)
        (local_sum * world / totals[1].clamp(min=1.0)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        loss_value = float(totals[0] / totals[1].clamp(min=1.0))
        losses.append(loss_value)
        tokens += int(totals[2])
        if progress and rank == 0:
            progress(step + 1, total, loss_value)
        if rank == 0 and ((step + 1) % config.checkpoint_every == 0 or step + 1 == total):
            _save_checkpoint(work_dir, model, optimizer, step + 1, meta)
    if rank == 0:
        model.save_pretrained(out_dir, safe_serialization=True)
        (out_dir / CONFIG_FILE).write_text(
            json.dumps(
                {**config.model_dump(), "device": device, "fingerprint": fingerprint}, indent=2
            )
        )
    return TrainResult(
        steps=total,
        resumed_from=resumed,
        tokens=tokens,
        final_loss=loss_value,
        seconds=time.perf_counter() - started,
        losses=losses,
        processes=world,
    )
