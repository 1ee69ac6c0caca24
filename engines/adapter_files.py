"""Checks an adapter directory must pass before any engine loads it.

Engines are poor judges of adapters: vLLM accepts an adapter for another base model silently,
and both engines would unpickle a ``.bin`` if one were there. So the registry checks the files
itself: the digest recorded at registration, the safetensors headers, the rank against the
serving limit, and every tensor's shape against the base model's architecture.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors import safe_open

from core.durable_files import sha256_file
from engines.base_model import PICKLE_SUFFIXES

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
_LORA_KEY = re.compile(r"layers\.(\d+)\..*?(\w+_proj)\.lora_([AB])(?:\.\w+)?\.weight$")


class AdapterFileError(ValueError):
    """The adapter directory cannot be served; the message says why."""


@dataclass(frozen=True)
class AdapterInfo:
    rank: int
    alpha: float
    target_modules: tuple[str, ...]
    base_model: str


def adapter_digest(path: Path) -> str:
    """One sha256 over every file's name and content hash, so any change to any file shows."""
    if not path.is_dir():
        raise AdapterFileError(f"adapter directory {path} does not exist")
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path)}\0{sha256_file(file)}\n".encode())
    return digest.hexdigest()


def _projection_shapes(base_config: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """(in_features, out_features) of each LoRA-able projection of a Llama-style model."""
    hidden = int(base_config["hidden_size"])
    heads = int(base_config["num_attention_heads"])
    head_dim = int(base_config.get("head_dim") or hidden // heads)
    kv = int(base_config.get("num_key_value_heads") or heads) * head_dim
    inter = int(base_config["intermediate_size"])
    q = heads * head_dim
    return {
        "q_proj": (hidden, q),
        "k_proj": (hidden, kv),
        "v_proj": (hidden, kv),
        "o_proj": (q, hidden),
        "gate_proj": (hidden, inter),
        "up_proj": (hidden, inter),
        "down_proj": (inter, hidden),
    }


def check_layout(path: Path) -> dict[str, Any]:
    """The checks any engine makes before loading (OWASP LLM03: never unpickle weights): a
    PEFT LoRA directory with safetensors weights and no pickled files. Returns its config."""
    if not path.is_dir():
        raise AdapterFileError(f"adapter directory {path} does not exist")
    pickled = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickled:
        raise AdapterFileError(
            f"{path} holds pickled weights {pickled}; only safetensors are loaded"
        )
    try:
        config: dict[str, Any] = json.loads((path / ADAPTER_CONFIG).read_text())
    except FileNotFoundError:
        raise AdapterFileError(f"{path} has no {ADAPTER_CONFIG}") from None
    except json.JSONDecodeError as exc:
        raise AdapterFileError(f"{ADAPTER_CONFIG} is not valid JSON: {exc}") from None
    if not isinstance(config, dict) or config.get("peft_type") != "LORA":
        peft_type = config.get("peft_type") if isinstance(config, dict) else None
        raise AdapterFileError(f"not a LoRA adapter (peft_type={peft_type!r})")
    if not (path / ADAPTER_WEIGHTS).is_file():
        raise AdapterFileError(f"{path} has no {ADAPTER_WEIGHTS}")
    return config


def verify_digest(path: Path, expected: str) -> None:
    """The files are byte for byte the ones checked when the version was registered."""
    if adapter_digest(path) != expected:
        raise AdapterFileError(f"{path} does not match the sha256 recorded when it was published")


def inspect_adapter(
    path: Path, *, base_model_dir: Path, max_rank: int, expected_digest: str | None = None
) -> AdapterInfo:
    """Raise AdapterFileError unless ``path`` is a servable LoRA for the base model."""
    if expected_digest is not None:
        verify_digest(path, expected_digest)
    config = check_layout(path)
    rank = int(config.get("r", 0))
    if not 0 < rank <= max_rank:
        raise AdapterFileError(f"LoRA rank {rank} is above the server's maximum of {max_rank}")

    base_config = json.loads((base_model_dir / "config.json").read_text())
    shapes = _projection_shapes(base_config)
    layers = int(base_config["num_hidden_layers"])
    weights = path / ADAPTER_WEIGHTS
    try:
        with safe_open(str(weights), framework="numpy") as tensors:
            found = {key: tuple(tensors.get_slice(key).get_shape()) for key in tensors.keys()}  # noqa: SIM118
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise AdapterFileError(
            f"{ADAPTER_WEIGHTS} is not a readable safetensors file: {exc}"
        ) from None
    if not found:
        raise AdapterFileError(f"{ADAPTER_WEIGHTS} holds no tensors")
    for key, shape in found.items():
        match = _LORA_KEY.search(key)
        if match is None:
            raise AdapterFileError(
                f"unsupported tensor {key!r} (only LoRA on attention/MLP projections)"
            )
        layer, module, half = int(match[1]), match[2], match[3]
        if layer >= layers or module not in shapes:
            raise AdapterFileError(f"{key!r} does not exist in the base model")
        in_features, out_features = shapes[module]
        expected = (rank, in_features) if half == "A" else (out_features, rank)
        if shape != expected:
            raise AdapterFileError(
                f"{key!r} has shape {list(shape)}, the base model needs {list(expected)}: "
                "the adapter was trained for another base model"
            )
    return AdapterInfo(
        rank=rank,
        alpha=float(config.get("lora_alpha", rank)),
        target_modules=tuple(sorted(config.get("target_modules") or [])),
        base_model=str(config.get("base_model_name_or_path") or ""),
    )
