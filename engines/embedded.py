"""The zero-setup engine: transformers + peft in this process, on CPU or GPU.

This module imports torch and peft at load time, so that no heavy import happens lazily on a
serving thread; the service imports it only when this engine is chosen.

One scheduler thread owns the model. It round-robins one decoding step per active stream, so
concurrent chats stream concurrently and fairly (a new stream's prefill goes first), and it applies adapter loads and unloads
between steps, so new adapters arrive while others are being served. Nothing else touches the
model, which is why no locks are needed around peft's global "active adapter" state.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

from core.chat_format import PromptTooLongError, Turn, prompt_ids
from engines.adapter_files import AdapterFileError, check_layout
from engines.base import (
    AdapterLoadError,
    AdapterNotFoundError,
    EngineError,
    EngineUnavailableError,
    SamplingParams,
)
from engines.base_model import verify_model_dir

log = logging.getLogger(__name__)

_END = object()  # marks the end of a stream on its output queue


@dataclass
class _Stream:
    """One reply being generated; lives on the scheduler thread."""

    prompt_ids: list[int]
    adapter: str | None
    params: SamplingParams
    emit: Callable[[object], None]
    cancelled: threading.Event
    generated: list[int] = field(default_factory=list)
    past: Any = None
    sent_chars: int = 0
    generator: Any = None


class EmbeddedEngine:
    name = "embedded"
    shared = False  # one per worker process

    def __init__(
        self,
        model_dir: Path,
        *,
        context_tokens: int = 2048,
        device: str = "auto",
        dtype: str = "auto",
    ) -> None:
        self._model_dir = model_dir
        self._context_tokens = context_tokens
        self._device_setting = device
        self._dtype_setting = dtype
        self._inbox: queue.Queue[_Stream | tuple[Callable[[], Any], Future[Any]] | None] = (
            queue.Queue()
        )
        self._thread: threading.Thread | None = None
        self._adapters: dict[str, Path] = {}
        self._model: Any = None
        self._tokenizer: Any = None
        self._selected: object = object()  # adapter the model is currently switched to
        self._stop_ids: set[int] = set()
        self._max_context = context_tokens
        self._active_streams = 0
        self.base_model_name = ""

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._thread is not None:
            return
        await asyncio.to_thread(self._load_base)
        self._thread = threading.Thread(target=self._run, name="embedded-engine", daemon=True)
        self._thread.start()

    async def close(self) -> None:
        if self._thread is None:
            return
        self._inbox.put(None)
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    async def ready(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _load_base(self) -> None:
        manifest = verify_model_dir(self._model_dir)
        self.base_model_name = str(manifest.get("base_model", self._model_dir.name))
        device = self._device_setting
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = self._dtype_setting
        if dtype == "auto":
            # bf16 matmuls are slow on most CPUs; float32 costs only memory at this size.
            dtype = "bfloat16" if device.startswith("cuda") else "float32"
        self._tokenizer = AutoTokenizer.from_pretrained(self._model_dir)
        model = AutoModelForCausalLM.from_pretrained(self._model_dir, dtype=getattr(torch, dtype))
        self._model = model.to(device).eval()
        self._device = device
        eos = model.generation_config.eos_token_id
        self._stop_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        if self._tokenizer.eos_token_id is not None:
            self._stop_ids.add(self._tokenizer.eos_token_id)
        trained_for = int(getattr(model.config, "max_position_embeddings", self._context_tokens))
        self._max_context = min(self._context_tokens, trained_for)
        log.info("embedded engine loaded %s on %s (%s)", self._model_dir, device, dtype)

    # -- public API --------------------------------------------------------------------------

    async def stream_chat(
        self,
        messages: Sequence[Turn],
        *,
        adapter: str | None = None,
        params: SamplingParams | None = None,
    ) -> AsyncIterator[str]:
        self._check_running()
        if adapter is not None and adapter not in self._adapters:
            raise AdapterNotFoundError(f"adapter {adapter!r} is not loaded")
        params = params or SamplingParams()
        ids = self.prompt_ids(messages, params.max_tokens)
        loop = asyncio.get_running_loop()
        out: asyncio.Queue[object] = asyncio.Queue()
        cancelled = threading.Event()

        def emit(item: object) -> None:
            try:
                loop.call_soon_threadsafe(out.put_nowait, item)
            except RuntimeError:  # the consumer's event loop is closed: nobody is listening
                cancelled.set()

        stream = _Stream(
            prompt_ids=ids,
            adapter=adapter,
            params=params,
            emit=emit,
            cancelled=cancelled,
        )
        self._inbox.put(stream)
        try:
            while True:
                item = await out.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise EngineError(f"generation failed: {item}") from item
                assert isinstance(item, str)
                yield item
        finally:
            # The consumer went away (client disconnected, task cancelled): stop decoding.
            cancelled.set()

    async def load_adapter(self, name: str, path: Path) -> None:
        if name in self._adapters:
            raise AdapterLoadError(
                f"adapter name {name!r} is taken; every version needs a new name"
            )
        try:
            check_layout(path)
        except AdapterFileError as exc:
            raise AdapterLoadError(str(exc)) from exc
        await self._call(lambda: self._load_adapter(name, path))

    async def ensure_adapter(self, name: str, path: Path) -> None:
        if name not in self._adapters:
            await self.load_adapter(name, path)

    async def unload_adapter(self, name: str) -> None:
        if name not in self._adapters:
            raise AdapterNotFoundError(f"adapter {name!r} is not loaded")
        await self._call(lambda: self._unload_adapter(name))

    async def list_adapters(self) -> list[str]:
        return sorted(self._adapters)

    @property
    def tokenizer(self) -> Any:
        """The base model's tokenizer (read-only use: it is shared with the scheduler)."""
        return self._tokenizer

    @property
    def active_streams(self) -> int:
        """Replies being decoded right now (read without locking; a gauge, not a contract)."""
        return self._active_streams

    # -- scheduler thread ----------------------------------------------------------------------

    async def _call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the scheduler thread between two decoding steps."""
        self._check_running()
        future: Future[Any] = Future()
        self._inbox.put((fn, future))
        return await asyncio.wrap_future(future)

    def _check_running(self) -> None:
        """Fail fast rather than queue work that no thread will ever take."""
        if self._thread is None:
            raise EngineUnavailableError("the embedded engine is not started")
        if not self._thread.is_alive():
            raise EngineUnavailableError("the embedded engine's scheduler thread has stopped")

    def _run(self) -> None:

        active: deque[_Stream] = deque()
        with torch.inference_mode():
            while True:
                self._active_streams = len(active)
                try:
                    item = self._inbox.get(block=not active)
                except queue.Empty:
                    item = False  # type: ignore[assignment]
                if item is None:
                    for stream in active:
                        stream.emit(EngineUnavailableError("the engine shut down"))
                    return
                if isinstance(item, _Stream):
                    # Prefill first (as vLLM schedules): a new reply's first token comes after
                    # one step, not after a round of every stream; then it takes its turn.
                    active.appendleft(item)
                elif isinstance(item, tuple):
                    fn, future = item
                    # A caller that gave up while queued (a server shutting down cancels its
                    # adapter sync) has cancelled the future: skip the work, and never call
                    # set_result on it, which raises and would end this thread.
                    if future.set_running_or_notify_cancel():
                        try:
                            future.set_result(fn())
                        except BaseException as exc:  # handed to the awaiting caller
                            future.set_exception(exc)
                if not active:
                    continue
                stream = active.popleft()
                try:
                    finished = self._step(stream)
                except Exception as exc:
                    log.exception("generation step failed (adapter=%s)", stream.adapter)
                    stream.emit(exc)
                    continue
                if finished:
                    stream.emit(_END)
                else:
                    active.append(stream)

    def _step(self, stream: _Stream) -> bool:
        """One forward pass for one stream; returns True when the stream is done."""

        if stream.cancelled.is_set():
            return True
        if stream.adapter is not None and stream.adapter not in self._adapters:
            raise AdapterNotFoundError(f"adapter {stream.adapter!r} was unloaded mid-stream")
        if stream.past is None:
            input_ids = torch.tensor([stream.prompt_ids], device=self._device)
            if stream.params.seed is not None:
                stream.generator = torch.Generator(device=self._device).manual_seed(
                    stream.params.seed
                )
        else:
            input_ids = torch.tensor([[stream.generated[-1]]], device=self._device)
        output = self._forward(input_ids, stream.past, stream.adapter)
        stream.past = output.past_key_values
        logits = output.logits[0, -1, :].float()
        token = _sample(logits, stream.params.temperature, stream.generator)
        if token in self._stop_ids:
            self._flush(stream, final=True)
            return True
        stream.generated.append(token)
        if self._flush(stream, final=len(stream.generated) >= stream.params.max_tokens):
            return True
        return len(stream.generated) >= stream.params.max_tokens

    def _forward(self, input_ids: Any, past: Any, adapter: str | None) -> Any:

        model = self._model
        if isinstance(model, PeftModel):
            if adapter is None:
                with model.disable_adapter():
                    return model(input_ids=input_ids, past_key_values=past, use_cache=True)
            if self._selected != adapter:
                model.set_adapter(adapter)
                self._selected = adapter
        return model(input_ids=input_ids, past_key_values=past, use_cache=True)

    def _flush(self, stream: _Stream, *, final: bool) -> bool:
        """Emit the text decoded so far; returns True when a stop string ended the reply."""
        text = self._tokenizer.decode(stream.generated, skip_special_tokens=True)
        stops = stream.params.stop
        hit = min((text.find(s) for s in stops if s and s in text), default=-1)
        if hit >= 0:
            text, final = text[:hit], True
        if not final:
            # Hold back an incomplete UTF-8 sequence and anything that may begin a stop string.
            if text.endswith("\ufffd"):
                return False
            holdback = max((len(s) - 1 for s in stops), default=0)
            text = text[: len(text) - holdback] if holdback else text
        if len(text) > stream.sent_chars:
            stream.emit(text[stream.sent_chars :])
            stream.sent_chars = len(text)
        return hit >= 0

    def prompt_ids(self, messages: Sequence[Turn], max_tokens: int) -> list[int]:
        """The ids this engine decodes from: the turns fitted to the context window less the
        reply's room, in the model's chat template."""
        budget = self._max_context - max_tokens
        if budget <= 0:
            raise EngineError(
                f"max_tokens {max_tokens} leaves no room in a {self._max_context} context"
            )
        try:
            return prompt_ids(self._tokenizer, messages, budget)
        except PromptTooLongError as exc:
            raise EngineError(str(exc)) from exc

    def _load_adapter(self, name: str, path: Path) -> None:

        try:
            if isinstance(self._model, PeftModel):
                self._model.load_adapter(str(path), adapter_name=name)
            else:
                self._model = PeftModel.from_pretrained(self._model, str(path), adapter_name=name)
                self._model.eval()
        except Exception as exc:
            raise AdapterLoadError(f"adapter {name!r} from {path} failed to load: {exc}") from exc
        self._adapters[name] = path
        self._selected = object()
        log.info("loaded adapter %s from %s", name, path)

    def _unload_adapter(self, name: str) -> None:
        if len(self._adapters) == 1:
            # peft cannot delete its last adapter; strip the LoRA layers instead.
            self._model = self._model.unload()
        else:
            if name in self._model.active_adapters:
                # Switch away first; deleting the active adapter makes peft pick one and warn.
                self._model.set_adapter(next(n for n in self._adapters if n != name))
            self._model.delete_adapter(name)
        del self._adapters[name]
        self._selected = object()
        log.info("unloaded adapter %s", name)


def _sample(logits: Any, temperature: float, generator: Any) -> int:

    if temperature <= 0:
        return int(torch.argmax(logits).item())
    probs = torch.softmax(logits / temperature, dim=-1)
    return int(torch.multinomial(probs, num_samples=1, generator=generator).item())
