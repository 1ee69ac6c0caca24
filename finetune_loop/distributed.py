"""Training on several processes (PyTorch DDP): one per GPU, or gloo processes on a CPU.

`SUPPORTLOOP_FINETUNE_PROCESSES=N supportloop finetune run` is the whole multi-GPU command:
the nightly run stays one process (dataset, gate, publish), and only its training step is
handed to `torchrun --standalone --nproc_per_node N` running this module. The job goes to the
processes as a JSON spec in the run's work directory; process 0 writes the adapter, the
checkpoints and the result, and its progress is read back from a file while they train.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from core.chat_format import Turn
from core.settings import TrainingConfig
from finetune_loop.trainer import TrainResult, train_lora

log = logging.getLogger(__name__)
SPEC = "ddp-spec.json"
RESULT = "ddp-result.json"
PROGRESS = "ddp-progress.json"


def train(
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
    """train_lora in this process, or on ``config.processes`` DDP processes."""
    if config.processes == 1:
        return train_lora(
            model_dir=model_dir,
            examples=examples,
            out_dir=out_dir,
            work_dir=work_dir,
            config=config,
            fingerprint=fingerprint,
            device=device,
            progress=progress,
        )
    work_dir.mkdir(parents=True, exist_ok=True)
    for name in (RESULT, PROGRESS):
        (work_dir / name).unlink(missing_ok=True)
    spec = {
        "model_dir": str(model_dir),
        "examples": [[[t.role, t.text, t.train] for t in turns] for turns in examples],
        "out_dir": str(out_dir),
        "work_dir": str(work_dir),
        "config": config.model_dump(),
        "fingerprint": fingerprint,
        "device": device,
    }
    (work_dir / SPEC).write_text(json.dumps(spec))
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={config.processes}",
        "-m",
        "finetune_loop.distributed",
        str(work_dir / SPEC),
    ]
    log.info("training on %d processes: %s", config.processes, " ".join(command))
    with subprocess.Popen(command) as child:
        while child.poll() is None:
            _report(work_dir / PROGRESS, progress)
            time.sleep(0.5)
    if child.returncode != 0:
        raise RuntimeError(f"distributed training failed (exit code {child.returncode})")
    _report(work_dir / PROGRESS, progress)
    return TrainResult(**json.loads((work_dir / RESULT).read_text()))


def _report(path: Path, progress: Callable[[int, int, float], None] | None) -> None:
    if progress is None or not path.exists():
        return
    try:
        step, total, loss = json.loads(path.read_text())
    except (ValueError, OSError):
        return  # being rewritten; the next poll reads it
    progress(step, total, loss)


def _device(requested: str) -> str:
    """Each process its own GPU; CPU processes share the CPU."""
    import torch

    if requested in ("auto", "cuda") and torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return f"cuda:{local}"
    return "cpu"


def main(spec_path: str) -> None:
    """One DDP process (`torchrun ... -m finetune_loop.distributed SPEC`)."""
    import torch
    import torch.distributed as dist

    spec = json.loads(Path(spec_path).read_text())
    device = _device(spec["device"])
    dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    work_dir = Path(spec["work_dir"])
    rank = dist.get_rank()

    def progress(step: int, total: int, loss: float) -> None:
        staging = work_dir / f".{PROGRESS}"
        staging.write_text(json.dumps([step, total, loss]))
        staging.replace(work_dir / PROGRESS)

    try:
        if device == "cpu":  # the processes share the cores rather than each taking all
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // dist.get_world_size()))
        result = train_lora(
            model_dir=Path(spec["model_dir"]),
            examples=[[Turn(*turn) for turn in turns] for turns in spec["examples"]],
            out_dir=Path(spec["out_dir"]),
            work_dir=work_dir,
            config=TrainingConfig(**spec["config"]),
            fingerprint=spec["fingerprint"],
            device=device,
            progress=progress,
        )
        if rank == 0:
            (work_dir / RESULT).write_text(json.dumps(asdict(result)))
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    main(sys.argv[1])
