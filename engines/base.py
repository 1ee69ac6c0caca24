"""The engine interface every serving backend implements.

It mirrors an OpenAI-compatible streaming chat server with LoRA adapters addressed by name
(vLLM's model), so the embedded engine and vLLM are interchangeable:

    EngineError
     ├── EngineUnavailableError   the backend is down or not loaded yet
     ├── AdapterNotFoundError     a request named an adapter the engine does not hold
     └── AdapterLoadError         an adapter could not be loaded (bad files, wrong base model…)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from core.chat_format import Turn


class EngineError(RuntimeError):
    pass


class EngineUnavailableError(EngineError):
    pass


class AdapterNotFoundError(EngineError):
    pass


class AdapterLoadError(EngineError):
    pass


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int = 200
    temperature: float = 0.7  # 0 means greedy decoding
    stop: tuple[str, ...] = field(default_factory=tuple)
    seed: int | None = None


class Engine(Protocol):
    """A chat model server holding a base model and any number of named LoRA adapters."""

    name: str
    # Several workers talk to the same engine (vLLM servers): only one of them unloads.
    shared: bool

    async def start(self) -> None:
        """Load weights / connect; returns once the engine can serve."""

    async def close(self) -> None: ...

    async def ready(self) -> bool: ...

    def stream_chat(
        self,
        messages: Sequence[Turn],
        *,
        adapter: str | None = None,
        params: SamplingParams | None = None,
    ) -> AsyncIterator[str]:
        """Yield the reply as text pieces; ``adapter=None`` answers with the base model. The
        prompt is first fitted to the context window less ``params.max_tokens``
        (core.chat_format.fit: the system prompt stays, the oldest turns go)."""
        ...

    async def load_adapter(self, name: str, path: Path) -> None:
        """Load under a name not in use; a name already loaded is an AdapterLoadError."""

    async def ensure_adapter(self, name: str, path: Path) -> None:
        """Load wherever missing (idempotent): for re-loading after an engine restart."""

    async def unload_adapter(self, name: str) -> None: ...

    async def list_adapters(self) -> list[str]: ...
