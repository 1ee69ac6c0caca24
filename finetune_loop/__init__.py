"""Nightly LoRA loop: dataset, training, eval gate and publishing (issue 5)."""
