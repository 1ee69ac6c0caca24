"""Model serving behind one interface, and the model files it serves.

`base.py` is the interface (an OpenAI-compatible chat server with LoRA adapters addressed by
name); `embedded.py` (transformers + peft in this process) and `vllm.py` (one or more vLLM
servers) implement it; `vllm_server.py` starts a local vLLM; `base_model.py` prepares and
verifies the base model; `adapter_files.py` is what an adapter must pass before it is loaded.
The chat service serves through it, the nightly loop trains and scores with its model loading.
"""

from core.settings import Settings
from engines.base import (
    AdapterLoadError,
    AdapterNotFoundError,
    Engine,
    EngineError,
    EngineUnavailableError,
    SamplingParams,
)


def build_engine(settings: Settings) -> Engine:
    """The configured engine, not started. torch is imported only when the embedded engine is
    chosen."""
    if settings.engine == "vllm":
        from engines.vllm import VLLMEngine

        return VLLMEngine(
            settings.vllm_urls,
            model_dir=settings.resolved_model_dir,
            context_tokens=settings.context_tokens,
            served_model=settings.vllm_served_model,
            timeout_s=settings.vllm_timeout_s,
        )
    from engines.embedded import EmbeddedEngine

    return EmbeddedEngine(
        settings.resolved_model_dir,
        context_tokens=settings.context_tokens,
        device=settings.device,
        dtype=settings.dtype,
    )


__all__ = [
    "AdapterLoadError",
    "AdapterNotFoundError",
    "Engine",
    "EngineError",
    "EngineUnavailableError",
    "SamplingParams",
    "build_engine",
]
