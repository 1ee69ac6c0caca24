"""Real PEFT LoRA adapters for tests, made from the real base model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def make_random_adapter(model_dir: Path, out_dir: Path, *, seed: int, rank: int = 8) -> Path:
    """A LoRA with random (non-zero) B matrices: it visibly changes the model's output, which is
    all the serving tests need to tell adapters apart."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = LoraConfig(
        r=rank, lora_alpha=2 * rank, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    model = get_peft_model(base, config)
    model.save_pretrained(out_dir, safe_serialization=True)
    return out_dir


TRAIN_QUESTIONS = [
    "Hi, can I change my order?",
    "Where is my coffee?",
    "Do you have oat milk?",
    "How much is a latte?",
    "Can I cancel my order?",
    "Are you open on Sunday?",
    "I want a refund.",
    "Can I add a muffin?",
]


def train_phrase_adapter(
    model_dir: Path,
    out_dir: Path,
    *,
    phrase: str,
    steps: int = 30,
    seed: int = 0,
    rank: int = 8,
    lr: float = 2e-3,
) -> Path:
    """A LoRA trained (for real, briefly) to open every reply with ``phrase``, so a test can tell
    from the reply text alone which adapter answered. Loss on the assistant turn only."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model = get_peft_model(
        model,
        LoraConfig(
            r=rank,
            lora_alpha=2 * rank,
            target_modules=[
                "q_proj",
                "k_proj",
                "v_proj",
                "o_proj",
                "gate_proj",
                "up_proj",
                "down_proj",
            ],
            lora_dropout=0.0,
        ),
    )
    rows = []
    for question in TRAIN_QUESTIONS:
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": question}], add_generation_prompt=True, tokenize=False
        )
        reply = f"{phrase} Happy to help with that.<|im_end|>"
        prompt_ids = tokenizer.encode(prompt, add_special_tokens=False)
        reply_ids = tokenizer.encode(reply, add_special_tokens=False)
        rows.append((prompt_ids + reply_ids, [-100] * len(prompt_ids) + reply_ids))
    width = max(len(ids) for ids, _ in rows)
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in rows])
    labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in rows])
    attention = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in rows])
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=input_ids, attention_mask=attention, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(out_dir, safe_serialization=True)
    return out_dir


def make_foreign_adapter(out_dir: Path) -> Path:
    """A valid LoRA for a different (tiny, random) Llama: the wrong base model."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=49152,
    )
    model = get_peft_model(
        LlamaForCausalLM(config), LoraConfig(r=8, target_modules=["q_proj", "v_proj"])
    )
    model.save_pretrained(out_dir, safe_serialization=True)
    return out_dir


def make_corrupt_adapter(good: Path, out_dir: Path) -> Path:
    """A copy of a good adapter whose weights file is garbage."""
    import shutil

    shutil.copytree(good, out_dir)
    (out_dir / "adapter_model.safetensors").write_bytes(b"\x00garbage" * 100)
    return out_dir


PHRASES = {"v1": "Moonbeam here!", "v2": "Starlight speaking!"}
# Few, larger steps: the phrase is learnt (greedy replies open with it) in ~20 s on 2 cores.
PHRASE_STEPS, PHRASE_LR = 10, 5e-3


# A bot reply that is an XSS attempt: the widget must show it as text and never run it.
XSS_PHRASE = "<img src=x onerror=document.title=1>"


def cached_phrase_adapter(
    model_dir: Path, cache_dir: Path, version: str, phrase: str | None = None
) -> Path:
    """train_phrase_adapter once per machine: the result is kept under ``cache_dir``."""
    import shutil

    path = cache_dir / f"phrase-{version}-{PHRASE_STEPS}x{PHRASE_LR}"
    if not (path / "adapter_model.safetensors").is_file():
        # Test workers may train the same adapter at once: each in its own staging folder,
        # and the first to finish publishes it (training is seeded, so both are the same).
        staging = path.with_name(f"{path.name}.staging-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        train_phrase_adapter(
            model_dir,
            staging,
            phrase=phrase or PHRASES[version],
            seed=len(version),
            steps=PHRASE_STEPS,
            lr=PHRASE_LR,
        )
        try:
            staging.rename(path)
        except OSError:  # another worker published it first
            shutil.rmtree(staging, ignore_errors=True)
    return path


def register_random_adapter(
    session: Any, model_dir: Path, out_dir: Path, *, tenant_id: int, name: str, seed: int
) -> Any:
    """A real random LoRA, registered for the tenant (not activated)."""
    from core.crud.adapters import register_adapter
    from engines.adapter_files import adapter_digest

    path = make_random_adapter(model_dir, out_dir / name, seed=seed)
    version = register_adapter(
        session=session,
        tenant_id=tenant_id,
        name=name,
        path=str(path),
        base_model="smollm2",
        sha256=adapter_digest(path),
    )
    session.flush()
    return version
