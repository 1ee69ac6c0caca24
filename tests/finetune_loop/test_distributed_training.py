"""Training on several processes (DDP) learns what one process learns: on CPU, two gloo
processes under torchrun give the same loss curve and the same adapter as one process, on the
same data and seed."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import load_file

from core.chat_format import Turn
from core.settings import TrainingConfig
from finetune_loop import distributed
from tests.conftest import MODEL_DIR

pytestmark = pytest.mark.slow  # trains twice, once on two processes

DRINKS = ["latte", "flat white", "mocha", "cold brew", "chai", "americano", "cortado", "matcha"]


def examples() -> list[list[Turn]]:
    """Conversations of uneven length, so the processes' shares differ in reply tokens."""
    return [
        [
            Turn("system", "You are the support assistant of a coffee chain."),
            Turn("user", f"Can I order a {drink} for pickup at {n + 7} o'clock?"),
            Turn(
                "assistant",
                f"Yes, a {drink} for pickup at {n + 7}."
                + " It will be ready at the counter, and you pay in the app." * (n % 3 + 1),
                train=True,
            ),
        ]
        for n, drink in enumerate(DRINKS * 2)
    ]


def config(processes: int) -> TrainingConfig:
    return TrainingConfig(
        lora_rank=4,
        lora_alpha=8,
        learning_rate=1e-3,
        epochs=1,
        batch_size=4,
        max_seq_len=128,
        dropout=0.0,  # dropout masks would differ between one process and two
        checkpoint_every=100,
        processes=processes,
    )


def test_two_processes_follow_the_loss_curve_of_one(tmp_path: Path) -> None:
    runs = {}
    for processes in (1, 2):
        out = tmp_path / f"p{processes}" / "adapter"
        seen: list[tuple[int, int, float]] = []
        result = distributed.train(
            model_dir=MODEL_DIR,
            examples=examples(),
            out_dir=out,
            work_dir=tmp_path / f"p{processes}" / "work",
            config=config(processes),
            fingerprint="same-data",
            device="cpu",
            progress=lambda step, total, loss, seen=seen: seen.append((step, total, loss)),
        )
        assert result.processes == processes and seen and seen[-1][0] == result.steps == 4
        runs[processes] = (result, load_file(out / "adapter_model.safetensors"))
    (one, weights_one), (two, weights_two) = runs[1], runs[2]
    assert two.tokens == one.tokens  # every example seen once, by exactly one process
    assert len(two.losses) == len(one.losses) == 4
    for loss_one, loss_two in zip(one.losses, two.losses, strict=True):
        assert loss_two == pytest.approx(loss_one, rel=1e-3)
    assert one.losses[-1] < one.losses[0]  # it learns
    assert weights_one.keys() == weights_two.keys()
    for name, tensor in weights_one.items():
        assert (tensor - weights_two[name]).abs().max() < 1e-3, name
