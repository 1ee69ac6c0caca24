"""The production engine: one or more vLLM OpenAI-compatible servers.

Chats stream from ``/v1/chat/completions`` with the adapter chosen by the request's model name.
Adapters are loaded at run time with ``/v1/load_lora_adapter`` on every replica and verified
on every replica's ``/v1/models`` before anyone may use them (the server must run with
``--enable-lora`` and ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``; `supportloop vllm serve` does).

Prompts are fitted to the context window here, with the base model's own tokenizer (read from
the prepared model directory, the one vLLM serves), so a long conversation loses its oldest
turns instead of being refused by vLLM, and the system prompt always stays.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from core.chat_format import PromptTooLongError, Turn, fit
from engines.base import (
    AdapterLoadError,
    AdapterNotFoundError,
    EngineError,
    EngineUnavailableError,
    SamplingParams,
)

log = logging.getLogger(__name__)


def _error_message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:500] or response.reason_phrase


class VLLMEngine:
    name = "vllm"
    shared = True

    def __init__(
        self,
        base_urls: Sequence[str],
        *,
        model_dir: Path,
        context_tokens: int = 2048,
        served_model: str = "base",
        timeout_s: float = 120.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not base_urls:
            raise ValueError("the vLLM engine needs at least one server URL")
        self._urls = [url.rstrip("/") for url in base_urls]
        self._model_dir = model_dir
        self._context_tokens = context_tokens
        self._tokenizer: Any = None
        self._served_model = served_model
        self._timeout = httpx.Timeout(timeout_s, connect=5.0)
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._next_replica = itertools.cycle(range(len(self._urls)))

    async def start(self) -> None:
        # No waiting for vLLM here: the service starts, reports not-ready, and the adapter sync
        # loads what it needs once vLLM answers.
        self._client = httpx.AsyncClient(timeout=self._timeout, transport=self._transport)
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = await asyncio.to_thread(
                AutoTokenizer.from_pretrained, self._model_dir
            )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise EngineUnavailableError("the vLLM engine is not started")
        return self._client

    async def ready(self) -> bool:
        for url in self._urls:
            try:
                if (await self.client.get(f"{url}/health", timeout=5.0)).status_code != 200:
                    return False
            except httpx.HTTPError:
                return False
        return True

    # -- chat ----------------------------------------------------------------------------------

    async def stream_chat(
        self,
        messages: Sequence[Turn],
        *,
        adapter: str | None = None,
        params: SamplingParams | None = None,
    ) -> AsyncIterator[str]:
        params = params or SamplingParams()
        url = self._urls[next(self._next_replica)]
        body: dict[str, object] = {
            "model": adapter or self._served_model,
            "messages": [
                {"role": t.role, "content": t.text}
                for t in self.fitted(messages, params.max_tokens)
            ],
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "stream": True,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        try:
            async with self.client.stream(
                "POST", f"{url}/v1/chat/completions", json=body
            ) as response:
                if response.status_code == 404:
                    await response.aread()
                    raise AdapterNotFoundError(_error_message(response))
                if response.status_code != 200:
                    await response.aread()
                    raise EngineError(
                        f"vLLM {url} answered {response.status_code}: {_error_message(response)}"
                    )
                finished = False
                async for line in response.aiter_lines():
                    if not line.startswith("data: "):
                        continue
                    data = line.removeprefix("data: ")
                    if data == "[DONE]":
                        finished = True
                        break
                    chunk = json.loads(data)
                    if "error" in chunk:
                        raise EngineError(f"vLLM {url} failed mid-stream: {chunk['error']}")
                    for choice in chunk.get("choices", []):
                        text = (choice.get("delta") or {}).get("content")
                        if text:
                            yield text
                if not finished:
                    raise EngineUnavailableError(f"vLLM {url} closed the stream before the end")
        except httpx.HTTPError as exc:
            raise EngineUnavailableError(
                f"vLLM {url} unreachable: {type(exc).__name__} {exc}"
            ) from exc

    def fitted(self, messages: Sequence[Turn], max_tokens: int) -> list[Turn]:
        """The turns sent: what fits in the context window with room for the reply."""
        if self._tokenizer is None:
            raise EngineUnavailableError("the vLLM engine is not started")
        try:
            return fit(
                self._tokenizer,
                messages,
                self._context_tokens - max_tokens,
                generation_prompt=True,
            )
        except PromptTooLongError as exc:
            raise EngineError(str(exc)) from exc

    # -- adapters ------------------------------------------------------------------------------

    async def _replica_adapters(self, url: str) -> set[str]:
        try:
            response = await self.client.get(f"{url}/v1/models")
        except httpx.HTTPError as exc:
            raise EngineUnavailableError(f"vLLM {url} unreachable: {exc}") from exc
        if response.status_code != 200:
            raise EngineError(f"vLLM {url} /v1/models answered {response.status_code}")
        return {m["id"] for m in response.json()["data"] if m.get("parent")}

    async def _load_on(self, url: str, name: str, path: Path) -> None:
        try:
            response = await self.client.post(
                f"{url}/v1/load_lora_adapter", json={"lora_name": name, "lora_path": str(path)}
            )
        except httpx.HTTPError as exc:
            raise EngineUnavailableError(f"vLLM {url} unreachable: {exc}") from exc
        if response.status_code != 200:
            raise AdapterLoadError(f"vLLM {url} refused {name}: {_error_message(response)}")

    async def _unload_on(self, url: str, name: str) -> None:
        try:
            response = await self.client.post(
                f"{url}/v1/unload_lora_adapter", json={"lora_name": name}
            )
        except httpx.HTTPError as exc:
            raise EngineUnavailableError(f"vLLM {url} unreachable: {exc}") from exc
        if response.status_code not in (200, 404):
            raise EngineError(f"vLLM {url} could not unload {name}: {_error_message(response)}")

    async def load_adapter(self, name: str, path: Path) -> None:
        """All replicas or none: a replica that fails makes the others unload it again."""
        done: list[str] = []
        try:
            for url in self._urls:
                await self._load_on(url, name, path)
                done.append(url)
            for url in self._urls:
                if name not in await self._replica_adapters(url):
                    raise AdapterLoadError(f"vLLM {url} accepted {name} but does not list it")
        except EngineError:
            for url in done:
                try:
                    await self._unload_on(url, name)
                except EngineError:
                    log.warning("could not undo the load of %s on %s", name, url)
            raise

    async def ensure_adapter(self, name: str, path: Path) -> None:
        for url in self._urls:
            if name not in await self._replica_adapters(url):
                await self._load_on(url, name, path)
                log.info("loaded %s on %s", name, url)

    async def unload_adapter(self, name: str) -> None:
        for url in self._urls:
            await self._unload_on(url, name)

    async def list_adapters(self) -> list[str]:
        """Adapters every replica holds (only those can serve any request)."""
        sets = [await self._replica_adapters(url) for url in self._urls]
        return sorted(set.intersection(*sets))
