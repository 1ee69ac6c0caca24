"""The production engine: one or more vLLM OpenAI-compatible servers.

Chats stream from ``/v1/chat/completions`` with the adapter chosen by the request's model name.
Adapters are loaded at run time with ``/v1/load_lora_adapter`` on every replica and verified
on every replica's ``/v1/models`` before anyone may use them (the server must run with
``--enable-lora`` and ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``; `supportloop vllm serve` does).

Several replicas: each is remembered with the adapters it was last seen holding. A request
goes, round robin, to a replica that is up and holds its adapter; one that cannot take it
before the first token (unreachable, or the adapter missing after a restart) hands it to the
next, so a replica that restarted is not asked for adapters until the adapter sync has loaded
them back onto it. The service stays ready while any replica is.

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
        self._holding: dict[str, set[str]] = {url: set() for url in self._urls}  # last seen
        self._down: set[str] = set()

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
        """Ready while any replica is: the others get their requests back when they return."""
        healthy = False
        for url in self._urls:
            try:
                ok = (await self.client.get(f"{url}/health", timeout=5.0)).status_code == 200
            except httpx.HTTPError:
                ok = False
            (self._down.discard if ok else self._down.add)(url)
            healthy = healthy or ok
        return healthy

    def _candidates(self, adapter: str | None) -> list[str]:
        """Replicas to try, in order: round robin among those up and holding the adapter,
        then the rest that are up, then (all down) every one."""
        start = next(self._next_replica)
        order = self._urls[start:] + self._urls[:start]
        up = [url for url in order if url not in self._down] or order
        if adapter is None:
            return up
        holding = [url for url in up if adapter in self._holding[url]]
        return holding + [url for url in up if url not in holding]

    # -- chat ----------------------------------------------------------------------------------

    async def stream_chat(
        self,
        messages: Sequence[Turn],
        *,
        adapter: str | None = None,
        params: SamplingParams | None = None,
    ) -> AsyncIterator[str]:
        params = params or SamplingParams()
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
        failure: EngineError | None = None
        for url in self._candidates(adapter):
            started = False
            try:
                async for piece in self._stream_from(url, body):
                    started = True
                    yield piece
                return
            except (EngineUnavailableError, AdapterNotFoundError) as exc:
                if started:
                    raise  # the customer saw part of this reply: no silent second one
                failure = exc
                if isinstance(exc, AdapterNotFoundError) and adapter is not None:
                    self._holding[url].discard(adapter)
                else:
                    self._down.add(url)
                log.warning("vLLM %s did not take the request (%s); next replica", url, exc)
        assert failure is not None
        raise failure

    async def _stream_from(self, url: str, body: dict[str, object]) -> AsyncIterator[str]:
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
                self._down.discard(url)
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
            self._down.add(url)
            raise EngineUnavailableError(f"vLLM {url} unreachable: {exc}") from exc
        if response.status_code != 200:
            raise EngineError(f"vLLM {url} /v1/models answered {response.status_code}")
        held = {m["id"] for m in response.json()["data"] if m.get("parent")}
        self._down.discard(url)
        self._holding[url] = held
        return held

    async def _load_on(self, url: str, name: str, path: Path) -> None:
        try:
            response = await self.client.post(
                f"{url}/v1/load_lora_adapter", json={"lora_name": name, "lora_path": str(path)}
            )
        except httpx.HTTPError as exc:
            raise EngineUnavailableError(f"vLLM {url} unreachable: {exc}") from exc
        if response.status_code != 200:
            raise AdapterLoadError(f"vLLM {url} refused {name}: {_error_message(response)}")
        self._holding[url].add(name)

    async def _unload_on(self, url: str, name: str) -> None:
        try:
            response = await self.client.post(
                f"{url}/v1/unload_lora_adapter", json={"lora_name": name}
            )
        except httpx.HTTPError as exc:
            raise EngineUnavailableError(f"vLLM {url} unreachable: {exc}") from exc
        if response.status_code not in (200, 404):
            raise EngineError(f"vLLM {url} could not unload {name}: {_error_message(response)}")
        self._holding[url].discard(name)

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
        """Onto every reachable replica that lacks it; a replica that is down gets it at the
        first sync after it returns."""
        reached = False
        for url in self._urls:
            try:
                held = await self._replica_adapters(url)
            except EngineUnavailableError as exc:
                log.warning("%s not checked on a replica that is down: %s", name, exc)
                continue
            reached = True
            if name not in held:
                await self._load_on(url, name, path)
                log.info("loaded %s on %s", name, url)
        if not reached:
            raise EngineUnavailableError(f"no vLLM replica reachable to load {name}")

    async def unload_adapter(self, name: str) -> None:
        for url in self._urls:
            await self._unload_on(url, name)

    async def list_adapters(self) -> list[str]:
        """Adapters some reachable replica holds: requests go to the replicas holding theirs."""
        held: set[str] = set()
        reached = False
        for url in self._urls:
            try:
                held |= await self._replica_adapters(url)
                reached = True
            except EngineUnavailableError:
                continue
        if not reached:
            raise EngineUnavailableError("no vLLM replica reachable")
        return sorted(held)
