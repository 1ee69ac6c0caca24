"""HAProxy in front of several `supportloop serve` workers, as a deployment puts a load balancer
in front of its pods: round robin, WebSockets passed through (a long tunnel timeout), workers
health-checked on /readyz, and a connection to a worker that died redispatched to another."""

from __future__ import annotations

import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.chat_load import free_port

CONFIG = """\
global
    maxconn {maxconn}

defaults
    mode http
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
    option redispatch
    retries 3

frontend chat
    bind 127.0.0.1:{port}
    default_backend workers

backend workers
    balance roundrobin
    option httpchk GET /readyz
    default-server inter 500ms fall 2 rise 2
{servers}
"""


class Balancer:
    def __init__(self, worker_ports: list[int]) -> None:
        haproxy = shutil.which("haproxy")
        if haproxy is None:
            raise RuntimeError("haproxy is not installed (`make balancer` installs it)")
        self.port = free_port()
        self.http_url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        servers = "\n".join(
            f"    server w{n} 127.0.0.1:{port} check" for n, port in enumerate(worker_ports)
        )
        self._dir = Path(tempfile.mkdtemp(prefix="sl-haproxy-"))
        self._config = self._dir / "haproxy.cfg"
        # Two descriptors per proxied connection, within this process's limit (HAProxy refuses
        # to start when it cannot raise its own to what maxconn needs).
        maxconn = (resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 100) // 2
        self._config.write_text(CONFIG.format(port=self.port, servers=servers, maxconn=maxconn))
        self._command = [haproxy, "-db", "-f", str(self._config)]
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Balancer:
        with (self._dir / "haproxy.log").open("wb") as log:
            self._process = subprocess.Popen(self._command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.http_url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"haproxy did not start; see {self._dir / 'haproxy.log'}")
            time.sleep(0.2)

    def __exit__(self, *_: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
