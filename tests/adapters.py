"""Real PEFT LoRA adapters for tests, made from the real base model."""

from __future__ import annotations

from pathlib import Path


def make_random_adapter(model_dir: Path, out_dir: Path, *, seed: int) -> Path:
    """A LoRA with random (non-zero) B matrices: it visibly changes the model's output, which is
    all the serving tests need to tell adapters apart."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = LoraConfig(
        r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    model = get_peft_model(base, config)
    model.save_pretrained(out_dir, safe_serialization=True)
    return out_dir
