"""Model serving behind one interface: the embedded transformers+peft engine and vLLM."""

from chat_service.engine.base import (
    AdapterLoadError,
    AdapterNotFoundError,
    ChatTurn,
    Engine,
    EngineError,
    EngineUnavailableError,
    SamplingParams,
)

__all__ = [
    "AdapterLoadError",
    "AdapterNotFoundError",
    "ChatTurn",
    "Engine",
    "EngineError",
    "EngineUnavailableError",
    "SamplingParams",
]
