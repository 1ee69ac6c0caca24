"""A real `supportloop serve` child process that a scenario can start, kill -9, stop and weigh."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.chat_load import MODEL_DIR, free_port

UNLIMITED = "1000000"
# What the scenarios measure is the service's own behaviour, not its abuse limits.
LIMITS_LIFTED = {
    "SUPPORTLOOP_WIDGET_MESSAGES_PER_MINUTE": UNLIMITED,
    "SUPPORTLOOP_WIDGET_MESSAGES_PER_MINUTE_PER_IP": UNLIMITED,
    "SUPPORTLOOP_WIDGET_MESSAGES_PER_MINUTE_PER_TENANT": UNLIMITED,
    "SUPPORTLOOP_WIDGET_FRAMES_PER_MINUTE": UNLIMITED,
    "SUPPORTLOOP_WIDGET_CONNECTIONS_PER_IP": UNLIMITED,
    "SUPPORTLOOP_WIDGET_CONNECTIONS_PER_TENANT": UNLIMITED,
}


class ServerProcess:
    """One service on a fixed port, restartable on the same database."""

    def __init__(self, database_url: str, **settings: str) -> None:
        self.port = free_port()
        self.http_url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "SUPPORTLOOP_DATABASE_URL": database_url,
            "SUPPORTLOOP_VAR_DIR": tempfile.mkdtemp(prefix="sl-chaos-"),
            "SUPPORTLOOP_MODEL_DIR": str(MODEL_DIR.resolve()),
            "SUPPORTLOOP_PORT": str(self.port),
            "SUPPORTLOOP_DEMO_TENANT": "",
            **LIMITS_LIFTED,
            **{f"SUPPORTLOOP_{key.upper()}": value for key, value in settings.items()},
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log = Path(self.env["SUPPORTLOOP_VAR_DIR"]) / "server.log"

    def start(self, timeout_s: float = 180) -> float:
        """Start and wait until /readyz answers; returns the seconds it took."""
        started = time.monotonic()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "supportloop", "serve"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        while True:
            try:
                if httpx.get(f"{self.http_url}/readyz", timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited; see {self.log}")
            if time.monotonic() - started > timeout_s:
                raise RuntimeError(f"the server did not start in {timeout_s} s; see {self.log}")
            time.sleep(0.2)

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.terminate()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """kill -9: no shutdown code runs, as in a power cut of the process."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def terminate(self, timeout_s: float = 60) -> float:
        """SIGTERM, as an orchestrator stops a pod; returns the seconds until it exited."""
        assert self.process is not None
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout_s)
        return time.monotonic() - started

    def rss_bytes(self) -> int:
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def active_widget_connections(self) -> float | None:
        """The open-widget-socket gauge, or None when the server is too busy to answer now."""
        try:
            text = httpx.get(f"{self.http_url}/metrics", timeout=30).text
        except httpx.TimeoutException:
            return None
        for line in text.splitlines():
            if line.startswith('supportloop_active_connections{kind="widget"}'):
                return float(line.split()[-1])
        return 0.0
